# Fast-LS-l0 (Liu, Zhong, Huang, arXiv 2502.21041) of PreActResNet-18 on CIFAR-10: 1-step sPGD
# (random start, one joint step, TopK) + self-adaptive soft labels + the TRADES loss:
#   mean_i w_i CE(t_i, f(x_i)) + beta KL(f(x) || f(x')).
# Evaluate at k = 20 with sparse-AutoAttack:
#   python tools/eval_cls.py configs/cls/cifar10_preact18_fast_ls_l0.py work_dirs/cifar10_preact18_fast_ls_l0/epoch_100.pth --threat l0 --k 20 --attacks clean,saa
# Fast-LS-l0's own epochs, lr and training k are NOT CHECKED (../shared/papers/sparse_l0_facts.md):
# we keep the sPGD setup of cifar10_preact18_sparse_at.py (100 epochs, lr 0.05, batch 128, k 120)
# so the three CIFAR configs differ only in the method.
# beta = 3 (sPGD code's TRADES default; NOT CHECKED for Fast-LS-l0; TRADES' Linf default is 6).
# Soft targets (model.soft_targets): momentum 0.9 CHECKED (self-adaptive training's code);
# start_epoch 70 = the SAT + TRADES reference's 70 of 100 epochs; Fast-LS-l0's start (a fraction
# of the epochs in its code) is NOT CHECKED.
_base_ = ['./cifar10_preact18_sparse_at.py']

model = dict(method=dict(_delete_=True, type='fast_ls_l0', k=120, variant='random', beta=3.0),
             soft_targets=dict(momentum=0.9, start_epoch=70))
