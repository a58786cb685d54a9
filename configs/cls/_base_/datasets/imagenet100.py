# ImageNet100 as an ImageFolder tree: <data_root>/train/<wnid>/*.JPEG and <data_root>/val/<wnid>/*
data_root = 'data/imagenet100'
train_dataloader = dict(
    batch_size=128, sampler=dict(type='DefaultSampler', shuffle=True),
    num_workers=8, persistent_workers=False, collate_fn=dict(type='default_collate'),
    worker_init_fn=dict(type='reseed_worker'),
    dataset=dict(type='ImageNet100', data_root=data_root, split='train', augment=True, image_size=224,
                 val_size=5000))
# The best checkpoint is selected on 5000 images (50 per class) held out of train/; val/ is the
# test split. val_size=0 in both loaders: select on val/, a run then labelled "test-selected".
# shuffle=True with a fixed seed (the val sampler's epoch never changes): the examples validation
# attacks (model.val_attack.n_examples) are a fixed random subset, not one class of a sorted set.
val_dataloader = dict(
    batch_size=128, sampler=dict(type='DefaultSampler', shuffle=True),
    num_workers=8, persistent_workers=False, collate_fn=dict(type='default_collate'),
    worker_init_fn=dict(type='reseed_worker'),
    dataset=dict(type='ImageNet100', data_root=data_root, split='val', image_size=224, val_size=5000))
# What tools/eval_cls.py reports on.
test_dataloader = dict(val_dataloader,
                       dataset=dict(type='ImageNet100', data_root=data_root, split='test', image_size=224))
# The paper's ImageNet100 threat model: Linf eps 0.03, step 2/255.
model = dict(type='AdversarialClassifier', num_classes=100, in_channels=3, image_size=224,
             mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225),
             val_attack=dict(eps=0.03, alpha=2 / 255, steps=10, n_examples=1000))
