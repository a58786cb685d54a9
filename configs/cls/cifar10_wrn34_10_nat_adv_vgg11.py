# NAT of WRN-34-10 on CIFAR-10 against a vanilla-trained VGG-11 with BN (not a row of Table 7: the
# paper uses VGG-11 only inside the ensemble of appendix I; this isolates its share).
# Train the adversary first: python tools/train_cls.py configs/cls/cifar10_vgg11_vanilla.py
_base_ = ['./cifar10_wrn34_10_nat.py']

model = dict(nasty=dict(adversary=dict(arch='vgg11',
                                       checkpoint='work_dirs/cifar10_vgg11_vanilla/epoch_300.pth',
                                       trained_by='configs/cls/cifar10_vgg11_vanilla.py')))
