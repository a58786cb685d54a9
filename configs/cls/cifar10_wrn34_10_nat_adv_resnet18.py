# NAT of WRN-34-10 on CIFAR-10 against a vanilla-trained ResNet-18 (Table 7, appendix F:
# an adversary of another architecture; paper's RN18: 88.09 clean, PGD-20 64.88, AA 48.43).
# Train the adversary first: python tools/train_cls.py configs/cls/cifar10_resnet18_vanilla.py
_base_ = ['./cifar10_wrn34_10_nat.py']

model = dict(nasty=dict(adversary=dict(arch='resnet18',
                                       checkpoint='work_dirs/cifar10_resnet18_vanilla/epoch_300.pth',
                                       trained_by='configs/cls/cifar10_resnet18_vanilla.py')))
