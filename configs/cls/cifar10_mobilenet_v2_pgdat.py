# PGD-AT of MobileNetV2 (CIFAR version) on CIFAR-10: Linf 8/255, step 2/255, 10 steps, 300 epochs;
# an adversarially trained adversary (Table 8's "AT" state, for this architecture).
# Table 5's "SAT" row on MobileNetV2: RSLAD's name for standard (Madry) PGD-AT.
_base_ = ['./cifar10_preact18_pgdat.py']

model = dict(arch='mobilenet_v2')
