# PGD-AT of WRN-34-10 on CIFAR-10 (Table 1's PGD-AT row; Table 10's "AT teacher"): Linf 8/255,
# step 2/255, 10 steps, the paper's 300-epoch recipe.
_base_ = ['./cifar10_preact18_pgdat.py']

model = dict(arch='wrn34_10')
