# Table 10, ARD "From AT Teacher": a ResNet-18 student distilled by ARD (Goldblum et al. 2020)
# from the PGD-AT WRN-34-10 of cifar10_wrn34_10_pgdat.py. The paper gives no distillation recipe;
# this is ARD's code (goldblum/AdversariallyRobustDistillation main.py, its defaults): temperature 30,
# weight (its alpha) 1, batch 128, SGD lr 0.1 momentum 0.9 wd 2e-4, 200 epochs, x0.1 at 100 and
# 150; attack PGD-10 on the student's CE, Linf 8/255, step 2/255.
# Paper's student (Table 10): clean 79.43, PGD-20 38.21, AA 34.12 (from the NAT teacher: 77.67,
# 37.52, 30.43).
_base_ = ['_base_/datasets/cifar10.py', '_base_/default_runtime.py']

model = dict(arch='resnet18',
             method=dict(type='ard', eps=8 / 255, alpha=2 / 255, steps=10, temperature=30.0, weight=1.0),
             teacher=dict(arch='wrn34_10', checkpoint='work_dirs/cifar10_wrn34_10_pgdat/epoch_300.pth',
                          trained_by='configs/cls/cifar10_wrn34_10_pgdat.py', precision=None))
train_dataloader = dict(batch_size=128)
optim_wrapper = dict(type='OptimWrapper',
                     optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=2e-4))
param_scheduler = [dict(type='MultiStepLR', by_epoch=True, milestones=[100, 150], gamma=0.1)]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=200, val_interval=1)
