# TRADES-AWP of PreActResNet-18 on CIFAR-10: TRADES (beta 6; Linf 8/255, step 2/255, 10 KL steps)
# with adversarial weight perturbation, gamma 5e-3 after the reference's warm-up: TRADES-AWP
# (csdongxian/AWP trades_AWP/train_trades_cifar.py: --awp-warmup 10 in its 1-based epoch loop starts
# AWP at epoch 10, i.e. after 9 epochs of TRADES alone; warmup counts 0-based epochs here: 9).
_base_ = ['./cifar10_preact18_trades.py']

model = dict(method=dict(type='trades_awp', gamma=5e-3, warmup=9))
