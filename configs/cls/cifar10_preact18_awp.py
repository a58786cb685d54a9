# AT-AWP (Wu et al. 2020; the "AWP" row of Tables 1-2) of PreActResNet-18 on CIFAR-10: PGD-AT
# (Linf 8/255, step 2/255, 10 steps) with adversarial weight perturbation.
# gamma 0.01 and no warm-up: the reference's AT-AWP (csdongxian/AWP AT_AWP/train_cifar10.py, its
# logs for PreActResNet-18 and WRN-34-10). Training recipe: the paper's (sgd_300e); the reference's
# is 200 epochs, lr 0.1 -> 0.01 at 50 % -> 0.001 at 75 %, batch 128.
_base_ = ['_base_/datasets/cifar10.py', '_base_/schedules/sgd_300e.py', '_base_/default_runtime.py']

model = dict(arch='preact_resnet18',
             method=dict(type='pgd_at_awp', eps=8 / 255, alpha=2 / 255, steps=10, gamma=0.01, warmup=0))
