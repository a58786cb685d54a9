# NAT of WRN-34-10 on CIFAR-10 against an untrained WRN-34-10 (appendix G's "random initialization"
# state; no row of Table 8 shows it): checkpoint='random:<seed>' builds the adversary's
# architecture under torch.manual_seed(seed), so no file is needed and the run is repeatable.
_base_ = ['./cifar10_wrn34_10_nat.py']

model = dict(nasty=dict(adversary=dict(_delete_=True, arch='wrn34_10', checkpoint='random:0')))
