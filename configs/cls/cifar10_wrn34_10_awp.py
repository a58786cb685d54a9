# AT-AWP (Table 1; reference AutoAttack 85.36 / 53.97) of WRN-34-10 on CIFAR-10: the settings of
# cifar10_preact18_awp.py (the reference's WRN-34-10 run also uses gamma 0.01, no warm-up).
_base_ = ['./cifar10_preact18_awp.py']

model = dict(arch='wrn34_10')
