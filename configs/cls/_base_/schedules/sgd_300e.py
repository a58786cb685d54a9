# The paper's recipe (Tables 1-2): SGD momentum 0.9, wd 5e-4, lr 0.1, 300 epochs, x0.1 at 160/240.
optim_wrapper = dict(type='OptimWrapper',
                     optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=5e-4))
param_scheduler = [dict(type='MultiStepLR', by_epoch=True, milestones=[160, 240], gamma=0.1)]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=300, val_interval=1)
