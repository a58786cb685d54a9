_base_ = ['./resnet50.py']

model = dict(name='resnet18')
