# sTRADES of PreActResNet-18 on CIFAR-10: CE(f(x), y) + beta KL(f(x) || f(x')) on 20-step sPGD
# examples (crafted on the CE, as the sPGD reference code does). Schedule, k and the attack as
# cifar10_preact18_sparse_at.py (read its comments).
# beta = 3: the sPGD code's --trades_beta default (CHECKED in CityU-MLO/sPGD adversarial_training/
# config.py); the value behind the paper's sTRADES numbers is NOT CHECKED.
_base_ = ['./cifar10_preact18_sparse_at.py']

model = dict(method=dict(_delete_=True, type='sparse_trades', k=120, steps=20, patience=10, variant='random',
                         beta=3.0))
