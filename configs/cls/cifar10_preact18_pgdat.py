# PGD-AT (Madry et al.) of PreActResNet-18 on CIFAR-10: Linf 8/255, step 2/255, 10 steps.
_base_ = ['_base_/datasets/cifar10.py', '_base_/schedules/sgd_300e.py', '_base_/default_runtime.py']

model = dict(arch='preact_resnet18',
             method=dict(type='pgd_at', eps=8 / 255, alpha=2 / 255, steps=10))
