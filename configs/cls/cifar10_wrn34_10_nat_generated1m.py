# NAT of WRN-34-10 on CIFAR-10 + 1M generated images: Table 3, "Ours", 1M, batch 1024, 600 epochs
# (paper: 90.44 clean / 55.41 AA). The adversary is the vanilla WRN-34-10 of cifar10_wrn34_10_nat.py.
_base_ = ['./cifar10_wrn34_10_pgdat_generated1m.py']

model = dict(
    method=dict(_delete_=True, type='nat', eps=8 / 255, alpha=2 / 255, steps=10),
    nasty=dict(weight=0.006, tau=4.0, scale_by_tau2=True,
               adversary=dict(arch='wrn34_10',
                              checkpoint='work_dirs/cifar10_wrn34_10_vanilla/epoch_300.pth',
                              trained_by='configs/cls/cifar10_wrn34_10_vanilla.py')))
