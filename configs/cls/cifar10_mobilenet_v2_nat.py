# NAT of MobileNetV2 (CIFAR version) on CIFAR-10 against a vanilla-trained MobileNetV2 (Table 5's
# MobileNetV2 column, black-box: PGD-20 67.82, CW 66.49, Square 59.21).
# Train the adversary first: python tools/train_cls.py configs/cls/cifar10_mobilenet_v2_vanilla.py
_base_ = ['./cifar10_preact18_nat.py']

model = dict(arch='mobilenet_v2',
             nasty=dict(adversary=dict(arch='mobilenet_v2',
                                       checkpoint='work_dirs/cifar10_mobilenet_v2_vanilla/epoch_300.pth',
                                       trained_by='configs/cls/cifar10_mobilenet_v2_vanilla.py')))
