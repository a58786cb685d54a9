# PGD-AT of ResNet-18 (CIFAR version) on CIFAR-10: Linf 8/255, step 2/255, 10 steps, 300 epochs;
# an adversarially trained adversary (Table 8's "AT" state, for this architecture).
_base_ = ['./cifar10_preact18_pgdat.py']

model = dict(arch='resnet18')
