# Vanilla small CNN on the embedded MNIST digits: the demo's adversary (CPU, seconds per epoch).
_base_ = ['_base_/datasets/mnist_embedded.py', '_base_/schedules/mnist_short.py',
          '_base_/default_runtime.py']

model = dict(arch='small_cnn', method=dict(type='vanilla'))
train_cfg = dict(max_epochs=4)
default_hooks = dict(checkpoint=dict(save_best='clean_acc'), logger=dict(interval=10))
