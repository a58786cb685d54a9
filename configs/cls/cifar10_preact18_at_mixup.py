# AT+mixup (Table 11) of PreActResNet-18 on CIFAR-10: PGD-AT on images mixed 0.7 / 0.3 with a
# random partner from the same batch, labels likewise (appendix K's "[0.7, 0.3], randomly sampled
# in the current batch"; methods/regularizers.py).
_base_ = ['./cifar10_preact18_pgdat.py']

model = dict(method=dict(type='at_mixup', ratio=0.7))
