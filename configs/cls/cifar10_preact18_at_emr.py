# AT+EMR (Table 11, eq. 16) of PreActResNet-18 on CIFAR-10: PGD-AT + 1e-3 * the entropy of the
# adversarial predictions, summed over the batch (lambda_EMR = 0.001, appendix K; the sign and the
# reduction are read as methods/regularizers.py explains).
_base_ = ['./cifar10_preact18_pgdat.py']

model = dict(method=dict(type='at_emr', weight=1e-3, reduction='sum'))
