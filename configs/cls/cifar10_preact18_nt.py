# Nasty Teacher (NT; Ma et al. 2021; Table 11's NT row) of PreActResNet-18 on CIFAR-10: vanilla
# cross-entropy plus the nasty term on clean images, against a vanilla PreActResNet-18.
# weight 0.04, tau 4 (with the tau^2 factor): Nasty Teacher's CIFAR-10 setting (VITA-Group/Nasty-Teacher).
# Train the adversary first: python tools/train_cls.py configs/cls/cifar10_preact18_vanilla.py
_base_ = ['_base_/datasets/cifar10.py', '_base_/schedules/sgd_300e.py', '_base_/default_runtime.py']

model = dict(
    arch='preact_resnet18',
    method=dict(type='nt'),
    nasty=dict(weight=0.04, tau=4.0, scale_by_tau2=True,
               adversary=dict(arch='preact_resnet18',
                              checkpoint='work_dirs/cifar10_preact18_vanilla/epoch_300.pth',
                              trained_by='configs/cls/cifar10_preact18_vanilla.py')))
