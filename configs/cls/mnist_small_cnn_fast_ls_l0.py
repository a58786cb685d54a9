# Fast-LS-l0 of the small CNN on the embedded MNIST digits: 1-step sPGD (k = 20) + self-adaptive
# soft labels + TRADES (beta 3). The soft targets start updating at epoch 7 of 10 (70 %, as the
# SAT + TRADES reference's 70 of 100; NOT CHECKED for Fast-LS-l0); momentum 0.9.
_base_ = ['./mnist_small_cnn_sparse_at.py']

model = dict(method=dict(_delete_=True, type='fast_ls_l0', k=20, variant='random', beta=3.0),
             soft_targets=dict(momentum=0.9, start_epoch=7))
