# Fast-LS-l0 of ResNet-34 on ImageNet-100 (224 x 224), the l0 threat model at k = 200 pixel
# locations (../shared/papers/sparse_l0_facts.md: sAA's ImageNet-100 budget). Evaluate:
#   python tools/eval_cls.py configs/cls/imagenet100_resnet34_fast_ls_l0.py work_dirs/imagenet100_resnet34_fast_ls_l0/epoch_100.pth --threat l0 --k 200 --attacks clean,saa-imagenet --n-examples 500 --batch-size 64
# (sAA on ImageNet-100: 500 examples, batch 64; saa-imagenet's Sparse-RS stage has the paper's
# ImageNet-100 setting, 3000 queries / p_init 0.3 / margin loss; plain saa has CIFAR's.)
# NOT CHECKED, our choices: training k = 200 (the evaluation budget; CIFAR trains at 6x its
# evaluation k, which we do not extrapolate), the schedule of the CIFAR sPGD setup (SGD momentum
# 0.9, wd 5e-4, lr 0.05, 100 epochs, x0.1 at 1/4 and 3/4), batch 128 (the data set base's), beta 3
# and the soft targets' start at 70 % of the epochs, as cifar10_preact18_fast_ls_l0.py.
_base_ = ['_base_/datasets/imagenet100.py', '_base_/default_runtime.py']

model = dict(arch='resnet34',
             method=dict(type='fast_ls_l0', k=200, variant='random', beta=3.0),
             soft_targets=dict(momentum=0.9, start_epoch=70),
             # validation: sPGD-100 at the evaluation k on 1000 held-out images; best-robust kept
             val_attack=dict(threat='l0', k=200, steps=100, n_examples=1000))
optim_wrapper = dict(type='OptimWrapper',
                     optimizer=dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=5e-4))
param_scheduler = [dict(type='MultiStepLR', by_epoch=True, milestones=[25, 75], gamma=0.1)]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=100, val_interval=1)
