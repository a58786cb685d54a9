# TRADES of WRN-34-10 on CIFAR-10 + 1M generated images, in NAT's Table 3 conditions (1M, batch
# 1024, 600 epochs). Wang et al. 2023's own rows are TRADES of WRN-28-10 (beta 5, their README);
# this is that method on the paper's NAT architecture.
_base_ = ['./cifar10_wrn34_10_pgdat_generated1m.py']

model = dict(method=dict(_delete_=True, type='trades', eps=8 / 255, alpha=2 / 255, steps=10, beta=5.0))
