# PGD-AT of WRN-34-10 on CIFAR-10 + 1M generated images (Table 3's data conditions of NAT's row:
# 1M, batch 1024, 600 epochs): the baseline NAT is compared with under the same augmentation.
# Linf 8/255, step 2/255, 10 steps (the reference's attack defaults).
_base_ = ['_base_/datasets/cifar10_generated.py', '_base_/schedules/sgd_onecycle_600e.py',
          '_base_/default_runtime.py']

model = dict(arch='wrn34_10', method=dict(type='pgd_at', eps=8 / 255, alpha=2 / 255, steps=10))
train_dataloader = dict(batch_size=1024)  # Table 3
