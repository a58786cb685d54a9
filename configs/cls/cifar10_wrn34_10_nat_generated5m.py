# NAT of WRN-34-10 on CIFAR-10 + 5M generated images: Table 3, "Ours", 5M, batch 1024, 600 epochs
# (paper: 91.01 clean / 57.24 AA). 5m.npz is published (15 GB, memory-mapped, never read whole).
_base_ = ['./cifar10_wrn34_10_nat_generated1m.py']

train_dataloader = dict(dataset=dict(generated='data/generated/cifar10/5m.npz'))
