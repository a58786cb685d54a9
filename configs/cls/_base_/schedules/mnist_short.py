# A few epochs on the embedded MNIST digits: minutes on a CPU.
optim_wrapper = dict(type='OptimWrapper',
                     optimizer=dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=5e-4))
param_scheduler = [dict(type='MultiStepLR', by_epoch=True, milestones=[8], gamma=0.1)]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=10, val_interval=1)
