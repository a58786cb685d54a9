# AT-AWP (Table 1; reference AutoAttack 60.38 / 28.86) of WRN-34-10 on CIFAR-100.
_base_ = ['./cifar100_preact18_awp.py']

model = dict(arch='wrn34_10')
