# NAT of WRN-34-10 on CIFAR-10 against a SAM-trained WRN-34-10 (Table 8 "SAM": 84.44 clean,
# PGD-20 63.71, AA 47.69).
# Table 8's "VT" row is cifar10_wrn34_10_nat.py.
# Train the adversary first: python tools/train_cls.py configs/cls/cifar10_wrn34_10_sam.py
_base_ = ['./cifar10_wrn34_10_nat.py']

model = dict(nasty=dict(adversary=dict(arch='wrn34_10',
                                       checkpoint='work_dirs/cifar10_wrn34_10_sam/epoch_300.pth',
                                       trained_by='configs/cls/cifar10_wrn34_10_sam.py')))
