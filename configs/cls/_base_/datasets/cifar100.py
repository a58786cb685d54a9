# CIFAR-100 in the torchvision python format: <data_root>/cifar-100-python/{train,test}
data_root = 'data/cifar100'
train_dataloader = dict(
    batch_size=512, sampler=dict(type='DefaultSampler', shuffle=True),
    num_workers=4, persistent_workers=False, collate_fn=dict(type='default_collate'),
    worker_init_fn=dict(type='reseed_worker'),
    dataset=dict(type='CIFAR100', data_root=data_root, split='train', augment=True))
# shuffle=True with a fixed seed (the val sampler's epoch never changes): the examples validation
# attacks (model.val_attack.n_examples) are a fixed random subset, not one class of a sorted set.
val_dataloader = dict(
    batch_size=500, sampler=dict(type='DefaultSampler', shuffle=True),
    num_workers=4, persistent_workers=False, collate_fn=dict(type='default_collate'),
    worker_init_fn=dict(type='reseed_worker'),
    dataset=dict(type='CIFAR100', data_root=data_root, split='test'))
model = dict(type='AdversarialClassifier', num_classes=100, in_channels=3, image_size=32,
             mean=(0.5071, 0.4865, 0.4409), std=(0.2673, 0.2564, 0.2762),
             val_attack=dict(eps=8 / 255, alpha=2 / 255, steps=10, n_examples=1000))
