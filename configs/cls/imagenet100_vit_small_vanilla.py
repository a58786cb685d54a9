# Vanilla ViT-Small (patch 16) on ImageNet100: the adversary of imagenet100_vit_small_nat.py.
_base_ = ['_base_/datasets/imagenet100.py', '_base_/schedules/sgd_300e.py', '_base_/default_runtime.py']

model = dict(arch='vit_small', method=dict(type='vanilla'))
default_hooks = dict(checkpoint=dict(save_best='clean_acc'))
