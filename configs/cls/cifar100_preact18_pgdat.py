# PGD-AT of PreActResNet-18 on CIFAR-100 (Table 2's PGD-AT row): Linf 8/255, step 2/255, 10 steps.
_base_ = ['_base_/datasets/cifar100.py', '_base_/schedules/sgd_300e.py', '_base_/default_runtime.py']

model = dict(arch='preact_resnet18',
             method=dict(type='pgd_at', eps=8 / 255, alpha=2 / 255, steps=10))
