# The demo's AMD&NAT (NAT's default weight and tau); the demo passes its vanilla model as the
# adversary's checkpoint, standing alone it trains the vanilla counterpart first.
_base_ = ['./synthetic_market1501_resnet18_amd.py']

model = dict(nasty=dict(adversary=dict(model='resnet18', checkpoint=None, trained_by=None,
                                       precision=None)))
