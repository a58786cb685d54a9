# MART (Table 2) of PreActResNet-18 on CIFAR-100: the CIFAR-10 settings (cifar10_preact18_mart.py).
_base_ = ['_base_/datasets/cifar100.py', '_base_/schedules/sgd_300e.py', '_base_/default_runtime.py']

model = dict(arch='preact_resnet18',
             method=dict(type='mart', eps=8 / 255, alpha=2 / 255, steps=10, beta=5.0))
