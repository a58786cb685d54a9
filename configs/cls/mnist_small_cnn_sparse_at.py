# sAT of the small CNN on the embedded MNIST digits, the l0 threat model (one channel: k pixels =
# k elements): the sparse demo's baseline (nat_tasks/cls/demos/sparse_demo.py; CPU, seconds per epoch).
# k = 20 of 784 pixels (2.6 %, about CIFAR's 20 of 1024) and 20 sPGD steps: our choice for the demo,
# not a published MNIST setting. steps=1 is 1-step sAT (Fast-LS-l0's attack, CE loss).
_base_ = ['_base_/datasets/mnist_embedded.py', '_base_/schedules/mnist_short.py',
          '_base_/default_runtime.py']

model = dict(arch='small_cnn',
             method=dict(type='sparse_at', k=20, steps=20, patience=10, variant='random'),
             # validation's attack is Linf PGD, meaningless for an l0 model: clean accuracy only,
             # and the last checkpoint is kept
             val_attack=dict(n_examples=0))
default_hooks = dict(checkpoint=dict(save_best=None), logger=dict(interval=10))
