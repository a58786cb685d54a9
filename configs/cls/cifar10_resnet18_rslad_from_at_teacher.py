# Table 10, RSLAD "From AT Teacher": a ResNet-18 student (CIFAR stem, random init) distilled by
# RSLAD (Zi et al. 2021) from the PGD-AT WRN-34-10 of cifar10_wrn34_10_pgdat.py (paper, appendix J:
# "WRN-34-10 trained with standard AT and NAT as the robust teacher models, and randomly
# initialized ResNet-18 as the student"). The paper gives no distillation recipe; this is RSLAD's
# code (zibojia/RSLAD resnet18_rslad_cifar10.py): batch 128, SGD lr 0.1 momentum 0.9 wd 2e-4, 300
# epochs, x0.1 at 215, 260 and 285; attack Linf 8/255, step 2/255, 10 steps; weights 5/6 and 1/6.
# Paper's student (Table 10): clean 89.23, PGD-20 50.19, AA 45.77 (from the NAT teacher: 87.97,
# 47.24, 42.64).
_base_ = ['_base_/datasets/cifar10.py', '_base_/default_runtime.py']

model = dict(arch='resnet18',
             method=dict(type='rslad', eps=8 / 255, alpha=2 / 255, steps=10, clean_weight=1 / 6),
             teacher=dict(arch='wrn34_10', checkpoint='work_dirs/cifar10_wrn34_10_pgdat/epoch_300.pth',
                          trained_by='configs/cls/cifar10_wrn34_10_pgdat.py', precision=None))
train_dataloader = dict(batch_size=128)
optim_wrapper = dict(type='OptimWrapper',
                     optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=2e-4))
param_scheduler = [dict(type='MultiStepLR', by_epoch=True, milestones=[215, 260, 285], gamma=0.1)]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=300, val_interval=1)
