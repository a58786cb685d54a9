# AT+LASSO (Table 11, eq. 15) of PreActResNet-18 on CIFAR-10: PGD-AT (Linf 8/255, step 2/255,
# 10 steps) + 1e-4 * sum |w| over all trainable parameters (lambda_LASSO = 0.0001, appendix K).
_base_ = ['./cifar10_preact18_pgdat.py']

model = dict(method=dict(type='at_lasso', weight=1e-4))
