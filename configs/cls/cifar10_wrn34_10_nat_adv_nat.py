# NAT of WRN-34-10 on CIFAR-10 against a NAT-trained WRN-34-10 (Table 8 "Nasty": 82.94 clean,
# PGD-20 64.14, AA 49.53). The paper does not say how its "Nasty model" was trained; its appendix G
# ("a few peaks") may also mean a Nasty Teacher (Ma et al. 2021): point checkpoint/trained_by at
# such a model to run that reading.
# Table 8's "VT" row is cifar10_wrn34_10_nat.py.
# Train the adversary first: python tools/train_cls.py configs/cls/cifar10_wrn34_10_nat.py
_base_ = ['./cifar10_wrn34_10_nat.py']

model = dict(nasty=dict(adversary=dict(arch='wrn34_10',
                                       checkpoint='work_dirs/cifar10_wrn34_10_nat/epoch_300.pth',
                                       trained_by='configs/cls/cifar10_wrn34_10_nat.py')))
