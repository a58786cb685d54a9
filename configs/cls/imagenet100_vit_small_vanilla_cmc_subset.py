# Vanilla ViT-Small on ImageNet100 = CMC's 100 classes of a full ImageNet tree (data/imagenet): the
# adversary of imagenet100_vit_small_nat_cmc_subset.py. Otherwise imagenet100_vit_small_vanilla.py.
_base_ = ['_base_/datasets/imagenet100_cmc_subset.py', '_base_/schedules/sgd_300e.py', '_base_/default_runtime.py']

model = dict(arch='vit_small', method=dict(type='vanilla'))
default_hooks = dict(checkpoint=dict(save_best='clean_acc'))
