# MART (Wang et al. 2020; Table 2) of PreActResNet-18 on CIFAR-10: Linf 8/255, step 2/255, 10 CE steps.
# beta 5: the reference's ResNet-18 value (YisenWang/MART train_resnet.py; 6 for WRN-34-10). The
# training recipe is the paper's (sgd_300e); the reference's own ResNet-18 recipe is 120 epochs,
# lr 0.01, wd 3.5e-3, batch 128 (its attack: eps 0.031, step 0.007).
_base_ = ['_base_/datasets/cifar10.py', '_base_/schedules/sgd_300e.py', '_base_/default_runtime.py']

model = dict(arch='preact_resnet18',
             method=dict(type='mart', eps=8 / 255, alpha=2 / 255, steps=10, beta=5.0))
