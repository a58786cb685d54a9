# Vanilla training of ResNet-18 on CIFAR-10 with SAM (Foret et al. 2021; rho 0.05, their CIFAR
# value; the paper gives none): Table 8's "SAM" adversary state. Same recipe as the vanilla config.
_base_ = ['./cifar10_resnet18_vanilla.py']

optim_wrapper = dict(type='SAMOptimWrapper', rho=0.05, adaptive=False)
