# ImageNet100 read from a FULL ImageNet-1k tree (<data_root>/train/<wnid>/*.JPEG, <data_root>/val/<wnid>/*)
# restricted to the 100 classes of CMC's list (imagenet100_cmc_classes.txt, next to this file); labels
# in sorted wnid order, the same as a pre-cut ImageFolder of those classes (imagenet100.py) gives.
# Same loaders, split sizes and threat model as imagenet100.py.
_base_ = './imagenet100.py'
data_root = 'data/imagenet'
class_list = '{{ fileDirname }}/imagenet100_cmc_classes.txt'
train_dataloader = dict(dataset=dict(data_root=data_root, class_list=class_list))
val_dataloader = dict(dataset=dict(data_root=data_root, class_list=class_list))
test_dataloader = dict(dataset=dict(data_root=data_root, class_list=class_list))
