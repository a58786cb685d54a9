# CIFAR-100 in the torchvision python format: <data_root>/cifar-100-python/{train,test}.
# Same loaders and validation threat model as CIFAR-10; other files, classes and constants.
_base_ = './cifar10.py'
data_root = 'data/cifar100'
train_dataloader = dict(dataset=dict(type='CIFAR100', data_root=data_root))
val_dataloader = dict(dataset=dict(type='CIFAR100', data_root=data_root))
test_dataloader = dict(dataset=dict(type='CIFAR100', data_root=data_root))
# must match nat_tasks.cls.data.data.CIFAR100
model = dict(num_classes=100, mean=(0.5071, 0.4865, 0.4409), std=(0.2673, 0.2564, 0.2762))
