# The demo's vanilla model: ResNet-18 at 64x32 on the generated Market tree, 12 epochs; its
# evaluation: the three metric attacks at 8/255, 16 steps of 1/255.
_base_ = [
    './_base_/datasets/synthetic_market1501.py', './_base_/models/resnet18.py',
    './_base_/schedules/adam_12e.py', './_base_/default_runtime.py'
]

test = dict(eps=[8 / 255])
