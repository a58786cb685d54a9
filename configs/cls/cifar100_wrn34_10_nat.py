# NAT of WRN-34-10 on CIFAR-100 (Table 1) against a vanilla-trained WRN-34-10.
_base_ = ['./cifar100_preact18_nat.py']

model = dict(arch='wrn34_10',
             nasty=dict(adversary=dict(arch='wrn34_10',
                                       checkpoint='work_dirs/cifar100_wrn34_10_vanilla/epoch_300.pth',
                                       trained_by='configs/cls/cifar100_wrn34_10_vanilla.py')))
