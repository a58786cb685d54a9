# TRADES-AWP of WRN-34-10 on CIFAR-10, the reference's own setting (AutoAttack 85.36 / 56.17;
# reference recipe: 200 epochs, lr 0.1 x0.1 at 100 and 150, wd 5e-4, batch 128).
_base_ = ['./cifar10_preact18_trades_awp.py']

model = dict(arch='wrn34_10')
