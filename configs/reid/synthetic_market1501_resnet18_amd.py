# The demo's AMD: IFGSM 8/255 with 5 steps of 2/255 (half of market1501_resnet50_amd's, for time).
_base_ = ['./synthetic_market1501_resnet18_vanilla.py']

model = dict(train_attack=dict(type='ifgsm', eps=8 / 255, alpha=2 / 255, steps=5))
