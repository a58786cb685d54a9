# The embedded data set: a Market-1501 tree generated on first use under
# ROOT/synthetic_market1501_v2/ (nat_tasks/reid/synthetic.py), at its native 64x32.
_base_ = ['./market1501.py']

data = dict(sources='synthetic_market1501', height=64, width=32)
