# CIFAR-10 in the torchvision python format: <data_root>/cifar-10-batches-py/{data_batch_1..5,test_batch}
data_root = 'data/cifar10'
train_dataloader = dict(
    batch_size=512, sampler=dict(type='DefaultSampler', shuffle=True),
    num_workers=4, persistent_workers=False, collate_fn=dict(type='default_collate'),
    worker_init_fn=dict(type='reseed_worker'),
    dataset=dict(type='CIFAR10', data_root=data_root, split='train', augment=True, val_size=1000))
# The best checkpoint is selected on 1000 images held out of the training batches (stratified,
# fixed seed; train excludes them). val_size=0 in both loaders: train on all 50000 and select on
# the test split, a run then labelled "test-selected".
# shuffle=True with a fixed seed (the val sampler's epoch never changes): the examples validation
# attacks (model.val_attack.n_examples) are a fixed random subset, not one class of a sorted set.
val_dataloader = dict(
    batch_size=500, sampler=dict(type='DefaultSampler', shuffle=True),
    num_workers=4, persistent_workers=False, collate_fn=dict(type='default_collate'),
    worker_init_fn=dict(type='reseed_worker'),
    dataset=dict(type='CIFAR10', data_root=data_root, split='val', val_size=1000))
# What tools/eval_cls.py reports on.
test_dataloader = dict(val_dataloader, dataset=dict(type='CIFAR10', data_root=data_root, split='test'))
# The network's data constants (must match nat_tasks.cls.data.data.CIFAR10) and the threat model of
# validation: Linf 8/255, PGD-10 on the 1000 validation images every epoch.
model = dict(type='AdversarialClassifier', num_classes=10, in_channels=3, image_size=32,
             mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616),
             val_attack=dict(eps=8 / 255, alpha=2 / 255, steps=10, n_examples=1000))
