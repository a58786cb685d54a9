# PGD-AT of the small CNN on the embedded MNIST digits, Linf eps 0.3 (ramped up over 2 epochs).
_base_ = ['_base_/datasets/mnist_embedded.py', '_base_/schedules/mnist_short.py',
          '_base_/default_runtime.py']

model = dict(arch='small_cnn', method=dict(type='pgd_at', eps=0.3, alpha=0.1, steps=5))
custom_hooks = [dict(type='EpochSeedHook'), dict(type='EpsWarmupHook', epochs=2)]
default_hooks = dict(logger=dict(interval=10))
