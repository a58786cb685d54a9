# NAT of PreActResNet-18 on CIFAR-100 against a vanilla-trained PreActResNet-18.
_base_ = ['_base_/datasets/cifar100.py', '_base_/schedules/sgd_300e.py', '_base_/default_runtime.py']

model = dict(
    arch='preact_resnet18',
    method=dict(type='nat', eps=8 / 255, alpha=2 / 255, steps=10),
    nasty=dict(weight=0.006, tau=4.0, scale_by_tau2=True,
               adversary=dict(arch='preact_resnet18',
                              checkpoint='work_dirs/cifar100_preact18_vanilla/epoch_300.pth',
                              trained_by='configs/cls/cifar100_preact18_vanilla.py')))
