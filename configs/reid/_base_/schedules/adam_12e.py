# The demo's short schedule: 12 epochs, lr 1e-3, x0.1 after 8.
_base_ = ['./adam_60e.py']

optimizer = dict(lr=1e-3)
lr_scheduler = dict(stepsize=8)
train = dict(max_epoch=12, print_freq=4)
