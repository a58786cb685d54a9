# AMD&NAT: AMD plus the nasty term on the ID logits against a frozen vanilla re-ID model. weight,
# tau and scale_by_tau2 are NAT's defaults (nat_tasks/core/nasty.py) unless set here.
# checkpoint=None: train the vanilla counterpart in <work_dir>/adversary_vanilla first (or reuse
# it once complete); or give a file, e.g. one trained by market1501_resnet50_vanilla.py.
_base_ = ['./market1501_resnet50_amd.py']

model = dict(nasty=dict(adversary=dict(model='resnet50', checkpoint=None, trained_by=None,
                                       precision=None)))
