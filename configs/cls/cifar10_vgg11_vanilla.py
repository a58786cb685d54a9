# Vanilla training (VT) of VGG-11 (BN) (CIFAR version) on CIFAR-10, the paper's 300-epoch recipe:
# an adversary of another architecture for the WRN-34-10 target (Tables 7-8, appendices F and I).
_base_ = ['./cifar10_preact18_vanilla.py']

model = dict(arch='vgg11')
