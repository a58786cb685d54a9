# Vanilla WRN-34-10 on CIFAR-10: the adversary of cifar10_wrn34_10_nat.py.
_base_ = ['./cifar10_preact18_vanilla.py']

model = dict(arch='wrn34_10')
