# NAT-AWP (new: no published row) of PreActResNet-18 on CIFAR-10: NAT (cifar10_preact18_nat.py:
# its nasty term and vanilla adversary) with adversarial weight perturbation on NAT's loss.
# gamma 0.01, no warm-up: AT-AWP's values (NAT's attack is AT's PGD on the cross-entropy); untuned.
_base_ = ['./cifar10_preact18_nat.py']

model = dict(method=dict(type='nat_awp', gamma=0.01, warmup=0))
