# AT+NNR (Table 11, eq. 17) of PreActResNet-18 on CIFAR-10: PGD-AT - 1e-3 * ||p(x')||_2 summed
# over the batch (lambda_NNR = 0.001, appendix K; reduction as for EMR, methods/regularizers.py).
_base_ = ['./cifar10_preact18_pgdat.py']

model = dict(method=dict(type='at_nnr', weight=1e-3, reduction='sum'))
