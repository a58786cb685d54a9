# NAT of WRN-34-10 on CIFAR-10 against an ensemble of vanilla ResNet-18, DenseNet-121 and VGG-11
# (Table 7's last row, appendix I): the nasty term uses the mean of the three models' logits.
# Paper: 88.94 clean, PGD-20 67.34, AA 46.00. Train the three adversaries first (configs below).
_base_ = ['./cifar10_wrn34_10_nat.py']

model = dict(nasty=dict(adversary=[
    dict(arch='resnet18', checkpoint='work_dirs/cifar10_resnet18_vanilla/epoch_300.pth',
         trained_by='configs/cls/cifar10_resnet18_vanilla.py'),
    dict(arch='densenet121', checkpoint='work_dirs/cifar10_densenet121_vanilla/epoch_300.pth',
         trained_by='configs/cls/cifar10_densenet121_vanilla.py'),
    dict(arch='vgg11', checkpoint='work_dirs/cifar10_vgg11_vanilla/epoch_300.pth',
         trained_by='configs/cls/cifar10_vgg11_vanilla.py'),
]))
