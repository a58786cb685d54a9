# torchreid's build_optimizer / build_lr_scheduler keyword arguments; lr x0.1 every 20 epochs
optimizer = dict(optim='adam', lr=3e-4, weight_decay=5e-4)
lr_scheduler = dict(lr_scheduler='single_step', stepsize=20, gamma=0.1)
# batch_size is per process: under torchrun the global batch is nproc x batch_size
train = dict(max_epoch=60, batch_size=32, print_freq=10, sync_bn=False)
