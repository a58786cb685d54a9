# torchreid's losses: label-smoothed CE on the ID logits plus the batch-hard triplet loss
loss = dict(name='triplet', softmax=dict(label_smooth=True),
            triplet=dict(margin=0.3, weight_t=1.0, weight_x=1.0))
# Clean tests during training (eval_freq=-1: after the last epoch only), and the evaluation of
# tools/test_reid.py: Table 12's metric attacks on the queries, Linf in [0, 1] pixels.
test = dict(batch_size=None,  # None: train.batch_size
            eval_freq=-1, ranks=[1, 5, 10],
            attacks=['fna', 'sma', 'ifgsm'], eps=[8 / 255, 10 / 255], alpha=1 / 255, steps=16,
            checklist=False)
seed = 0
device = None  # cuda when available, else cpu
resume = False
# 'pytorch': one process per GPU (or CPU process) under torchrun, see nat_tasks/reid/distributed.py
launcher = 'none'
