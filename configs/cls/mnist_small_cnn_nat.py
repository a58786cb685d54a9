# NAT of the small CNN on the embedded MNIST digits against the vanilla small CNN.
# Train the adversary first: python tools/train_cls.py configs/cls/mnist_small_cnn_vanilla.py
_base_ = ['./mnist_small_cnn_pgdat.py']

model = dict(
    method=dict(_delete_=True, type='nat', eps=0.3, alpha=0.1, steps=5),
    nasty=dict(weight=0.006, tau=4.0,
               adversary=dict(arch='small_cnn',
                              checkpoint='work_dirs/mnist_small_cnn_vanilla/epoch_4.pth',
                              trained_by='configs/cls/mnist_small_cnn_vanilla.py')))
