# The schedule of the generated-data runs. Table 3 gives only batch size (1024) and epochs (600 on
# CIFAR-10, 800 on CIFAR-100) for NAT's rows; the rest is the reference recipe (DM-Improves-AT,
# core/utils/parser.py defaults for batch 1024): SGD lr 0.4, Nesterov momentum 0.9, wd 5e-4 (none on
# BatchNorm), and 'cosinew', torch's OneCycleLR(max_lr=0.4, pct_start=0.025, total_steps=epochs)
# stepped per epoch: from lr/25 up to lr over the first 2.5% of epochs (15 of 600), then cosine
# annealing to lr/25/1e4 at the last epoch. Written with mmengine's LinearLR + CosineAnnealingLR
# (mmengine's OneCycleLR pickles a function into checkpoints, which the safe loader refuses on
# --resume): equal to the reference from epoch 14 on; the warm-up ramp is linear, not half-cosine.
# Not reproduced: its weight averaging (EMA, tau 0.995), label smoothing 0.1 and OneCycleLR's
# momentum cycling (0.85-0.95).
optim_wrapper = dict(type='OptimWrapper',
                     optimizer=dict(type='SGD', lr=0.4, momentum=0.9, nesterov=True, weight_decay=5e-4),
                     paramwise_cfg=dict(norm_decay_mult=0.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=1 / 25, by_epoch=True, begin=0, end=15),
    # the reference's peak is epoch 14 = 0.025 x 600 - 1; T_max = 599 - 14
    dict(type='CosineAnnealingLR', eta_min=0.4 / 25 / 1e4, T_max=585, by_epoch=True, begin=14, end=600),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=600, val_interval=1)
