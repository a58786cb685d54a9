# sTRADES of the small CNN on the embedded MNIST digits (k = 20, 20 sPGD steps, beta 3: read
# mnist_small_cnn_sparse_at.py and cifar10_preact18_sparse_trades.py).
_base_ = ['./mnist_small_cnn_sparse_at.py']

model = dict(method=dict(_delete_=True, type='sparse_trades', k=20, steps=20, patience=10, variant='random',
                         beta=3.0))
