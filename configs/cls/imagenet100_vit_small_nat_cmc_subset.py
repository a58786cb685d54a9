# NAT of ViT-Small on ImageNet100 = CMC's 100 classes of a full ImageNet tree (data/imagenet);
# otherwise imagenet100_vit_small_nat.py (Appendix B: Linf eps 0.03, step 2/255, batch 128).
_base_ = ['_base_/datasets/imagenet100_cmc_subset.py', '_base_/schedules/sgd_300e.py', '_base_/default_runtime.py']

model = dict(
    arch='vit_small',
    method=dict(type='nat', eps=0.03, alpha=2 / 255, steps=10),
    nasty=dict(weight=0.006, tau=4.0, scale_by_tau2=True,
               adversary=dict(arch='vit_small',
                              checkpoint='work_dirs/imagenet100_vit_small_vanilla_cmc_subset/epoch_300.pth',
                              trained_by='configs/cls/imagenet100_vit_small_vanilla_cmc_subset.py')))
