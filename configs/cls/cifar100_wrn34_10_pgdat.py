# PGD-AT of WRN-34-10 on CIFAR-100 (Table 1's PGD-AT row), the paper's 300-epoch recipe.
_base_ = ['./cifar100_preact18_pgdat.py']

model = dict(arch='wrn34_10')
