# TRADES (beta 5, as Wang et al. 2023) of WRN-34-10 on CIFAR-100 + 1M generated images, in NAT's
# Table 3 conditions (1M, batch 1024, 800 epochs).
_base_ = ['./cifar100_wrn34_10_pgdat_generated1m.py']

model = dict(method=dict(_delete_=True, type='trades', eps=8 / 255, alpha=2 / 255, steps=10, beta=5.0))
