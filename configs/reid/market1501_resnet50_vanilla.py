# Vanilla ResNet-50 (CE + triplet) on Market-1501: the baseline and NAT's adversary.
_base_ = [
    './_base_/datasets/market1501.py', './_base_/models/resnet50.py',
    './_base_/schedules/adam_60e.py', './_base_/default_runtime.py'
]
