# AMD: adversarial training whose inner maximisation is a metric attack (IFGSM/AMA at 8/255,
# 10 steps of 2/255: our choice, the paper does not state it), on X and X'.
_base_ = ['./market1501_resnet50_vanilla.py']

model = dict(train_attack=dict(type='ifgsm', eps=8 / 255, alpha=2 / 255, steps=10))
