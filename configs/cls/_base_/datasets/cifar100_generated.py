# CIFAR-100 plus generated images: the mixing of cifar10_generated.py on CIFAR-100's files.
# The published CIFAR-100 sets are cifar100/1m.npz and 50m_part1..4.npz
# (https://huggingface.co/datasets/P2333/DM-Improves-AT).
_base_ = './cifar100.py'
train_dataloader = dict(
    batch_sampler=dict(type='GeneratedMixBatchSampler', generated_fraction=0.7),
    dataset=dict(generated='data/generated/cifar100/1m.npz'))
