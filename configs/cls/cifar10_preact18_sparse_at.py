# sAT (PGD-AT with sPGD inside) of PreActResNet-18 on CIFAR-10, the l0 threat model: at most k pixel
# locations changed (all channels of a location count once), any amount within [0, 1].
# Evaluate at k = 20 (the paper's) with sparse-AutoAttack:
#   python tools/eval_cls.py configs/cls/cifar10_preact18_sparse_at.py work_dirs/cifar10_preact18_sparse_at/epoch_100.pth --threat l0 --k 20 --attacks clean,saa
# Numbers from ../shared/papers/sparse_l0_facts.md ("sPGD training setup"):
# - SGD momentum 0.9, wd 5e-4, lr 0.05, batch 128, 100 epochs; the reference steps MultiStepLR per
#   iteration at 1/4 and 3/4 of all iterations (gamma 0.1): the starts of epochs 25 and 75 here.
#   CHECKED against CityU-MLO/sPGD adversarial_training/train.py.
# - training k = 120 (larger than the evaluation k = 20), 20 sPGD iterations, patience 10, the
#   magnitude-gradient variant drawn per batch: NOT CHECKED against the reference's run scripts
#   (its config defaults are k 20 / 100 iterations / patience 10 / 'rand').
# Model selection: validation attacks 1000 held-out images with sPGD-100 at the evaluation k
# (model.val_attack, threat 'l0') and the best-robust checkpoint is kept next to the last one (the
# reference evaluates its last).
_base_ = ['_base_/datasets/cifar10.py', '_base_/default_runtime.py']

model = dict(arch='preact_resnet18',
             method=dict(type='sparse_at', k=120, steps=20, patience=10, variant='random'),
             val_attack=dict(threat='l0', k=20, steps=100, n_examples=1000))
train_dataloader = dict(batch_size=128)
optim_wrapper = dict(type='OptimWrapper',
                     optimizer=dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=5e-4))
param_scheduler = [dict(type='MultiStepLR', by_epoch=True, milestones=[25, 75], gamma=0.1)]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=100, val_interval=1)
