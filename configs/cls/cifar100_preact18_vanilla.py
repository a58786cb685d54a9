# Vanilla PreActResNet-18 on CIFAR-100: the adversary of cifar100_preact18_nat.py.
_base_ = ['_base_/datasets/cifar100.py', '_base_/schedules/sgd_300e.py', '_base_/default_runtime.py']

model = dict(arch='preact_resnet18', method=dict(type='vanilla'))
default_hooks = dict(checkpoint=dict(save_best='clean_acc'))
