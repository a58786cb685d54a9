# TRADES (beta 6) of MobileNetV2 (CIFAR version) on CIFAR-10: Table 5's TRADES row, MobileNetV2 column.
_base_ = ['./cifar10_preact18_trades.py']

model = dict(arch='mobilenet_v2')
