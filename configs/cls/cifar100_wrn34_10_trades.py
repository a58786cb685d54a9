# TRADES (beta 6) of WRN-34-10 on CIFAR-100 (Table 1's TRADES row), the paper's 300-epoch recipe.
_base_ = ['./cifar100_preact18_trades.py']

model = dict(arch='wrn34_10')
