# NAT of WRN-34-10 on CIFAR-100 + 5M generated images: Table 3, "Ours", 5M, batch 1024, 800 epochs
# (paper: 66.63 clean / 36.71 AA). No 5M CIFAR-100 file is published: 5M images are drawn once
# (seeded) from the 50M set's four parts, as the reference's aux_take_amount does. With a 5M file
# of your own: generated='...5m.npz' and generated_take=None.
_base_ = ['./cifar100_wrn34_10_nat_generated1m.py']

train_dataloader = dict(dataset=dict(
    generated=['data/generated/cifar100/50m_part1.npz', 'data/generated/cifar100/50m_part2.npz',
               'data/generated/cifar100/50m_part3.npz', 'data/generated/cifar100/50m_part4.npz'],
    generated_take=5_000_000))
