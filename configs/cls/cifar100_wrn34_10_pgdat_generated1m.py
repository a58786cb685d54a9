# PGD-AT of WRN-34-10 on CIFAR-100 + 1M generated images, in NAT's Table 3 conditions on CIFAR-100
# (1M, batch 1024, 800 epochs). Linf 8/255, step 2/255, 10 steps.
_base_ = ['_base_/datasets/cifar100_generated.py', '_base_/schedules/sgd_onecycle_600e.py',
          '_base_/default_runtime.py']

model = dict(arch='wrn34_10', method=dict(type='pgd_at', eps=8 / 255, alpha=2 / 255, steps=10))
train_dataloader = dict(batch_size=1024)  # Table 3
# Table 3: 800 epochs on CIFAR-100; the one-cycle schedule of sgd_onecycle_600e.py spans them
# (warm-up 20 = 0.025 x 800 epochs, peak at epoch 19, cosine over the 780 after it)
param_scheduler = [
    dict(type='LinearLR', start_factor=1 / 25, by_epoch=True, begin=0, end=20),
    dict(type='CosineAnnealingLR', eta_min=0.4 / 25 / 1e4, T_max=780, by_epoch=True, begin=19, end=800),
]
train_cfg = dict(max_epochs=800)
