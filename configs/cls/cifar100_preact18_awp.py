# AT-AWP (Table 2) of PreActResNet-18 on CIFAR-100: gamma 0.01, no warm-up, as the reference's
# CIFAR-100 run (AT_AWP/train_cifar100.py, logs/cifar100_linf/preactresnet18_awp).
_base_ = ['_base_/datasets/cifar100.py', '_base_/schedules/sgd_300e.py', '_base_/default_runtime.py']

model = dict(arch='preact_resnet18',
             method=dict(type='pgd_at_awp', eps=8 / 255, alpha=2 / 255, steps=10, gamma=0.01, warmup=0))
