# RSLAD of a MobileNetV2 student (CIFAR version) on CIFAR-10 from the PGD-AT WRN-34-10 teacher: Table
# 5's RSLAD row, MobileNetV2 column (the ResNet-18 column: cifar10_resnet18_rslad_from_at_teacher.py).
_base_ = ['./cifar10_resnet18_rslad_from_at_teacher.py']

model = dict(arch='mobilenet_v2')
