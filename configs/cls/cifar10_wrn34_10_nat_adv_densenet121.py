# NAT of WRN-34-10 on CIFAR-10 against a vanilla-trained DenseNet-121 (Table 7, appendix F: an
# adversary of another architecture; paper's DN121: 87.95 clean, PGD-20 64.39, AA 48.47).
# Train the adversary first: python tools/train_cls.py configs/cls/cifar10_densenet121_vanilla.py
_base_ = ['./cifar10_wrn34_10_nat.py']

model = dict(nasty=dict(adversary=dict(arch='densenet121',
                                       checkpoint='work_dirs/cifar10_densenet121_vanilla/epoch_300.pth',
                                       trained_by='configs/cls/cifar10_densenet121_vanilla.py')))
