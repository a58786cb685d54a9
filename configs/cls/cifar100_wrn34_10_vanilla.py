# Vanilla WRN-34-10 on CIFAR-100: the adversary of the CIFAR-100 WRN-34-10 NAT configs.
_base_ = ['./cifar100_preact18_vanilla.py']

model = dict(arch='wrn34_10')
