# NAT of WRN-34-10 on CIFAR-10 against a vanilla-trained ResNet-50 (Table 7, appendix F:
# an adversary of another architecture; paper's RN50: 88.12 clean, PGD-20 66.71, AA 46.67).
# Train the adversary first: python tools/train_cls.py configs/cls/cifar10_resnet50_vanilla.py
_base_ = ['./cifar10_wrn34_10_nat.py']

model = dict(nasty=dict(adversary=dict(arch='resnet50',
                                       checkpoint='work_dirs/cifar10_resnet50_vanilla/epoch_300.pth',
                                       trained_by='configs/cls/cifar10_resnet50_vanilla.py')))
