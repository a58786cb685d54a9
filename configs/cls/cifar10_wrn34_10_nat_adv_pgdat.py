# NAT of WRN-34-10 on CIFAR-10 against a PGD-AT WRN-34-10 (Table 8 "AT": 85.90 clean,
# PGD-20 65.96, AA 53.42).
# Table 8's "VT" row is cifar10_wrn34_10_nat.py.
# Train the adversary first: python tools/train_cls.py configs/cls/cifar10_wrn34_10_pgdat.py
_base_ = ['./cifar10_wrn34_10_nat.py']

model = dict(nasty=dict(adversary=dict(arch='wrn34_10',
                                       checkpoint='work_dirs/cifar10_wrn34_10_pgdat/epoch_300.pth',
                                       trained_by='configs/cls/cifar10_wrn34_10_pgdat.py')))
