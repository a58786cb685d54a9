# Fast-LS-l0 + NAT (new: no published code combines them) of PreActResNet-18 on CIFAR-10: the
# Fast-LS-l0 loss of cifar10_preact18_fast_ls_l0.py plus NAT's nasty term -w tau^2 KL(p_t || p_a)
# against a frozen vanilla PreActResNet-18, averaged over the clean and the 1-step sPGD images (as
# `nat` averages over X ∪ X'); w = 0 is exactly Fast-LS-l0.
# Train the adversary first: python tools/train_cls.py configs/cls/cifar10_preact18_vanilla.py
# weight / tau: NAT's Linf defaults (configs/cls/cifar10_preact18_nat.py); not tuned for l0.
_base_ = ['./cifar10_preact18_fast_ls_l0.py']

model = dict(
    method=dict(type='fast_ls_l0_nat'),
    nasty=dict(weight=0.006, tau=4.0, scale_by_tau2=True,
               adversary=dict(arch='preact_resnet18',
                              checkpoint='work_dirs/cifar10_preact18_vanilla/epoch_300.pth',
                              trained_by='configs/cls/cifar10_preact18_vanilla.py')))
