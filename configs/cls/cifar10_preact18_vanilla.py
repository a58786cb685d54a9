# Vanilla training (VT) of PreActResNet-18 on CIFAR-10: the adversary of the NAT configs.
_base_ = ['_base_/datasets/cifar10.py', '_base_/schedules/sgd_300e.py', '_base_/default_runtime.py']

model = dict(arch='preact_resnet18', method=dict(type='vanilla'))
# robust accuracy of a vanilla model is ~0: keep the best clean checkpoint instead
default_hooks = dict(checkpoint=dict(save_best='clean_acc'))
