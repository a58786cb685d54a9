# Table 10, ARD "From NAT Teacher": as cifar10_resnet18_ard_from_at_teacher.py, the teacher being
# the NAT WRN-34-10 of cifar10_wrn34_10_nat.py. Paper: clean 77.67, PGD-20 37.52, AA 30.43.
_base_ = ['./cifar10_resnet18_ard_from_at_teacher.py']

model = dict(teacher=dict(checkpoint='work_dirs/cifar10_wrn34_10_nat/epoch_300.pth',
                          trained_by='configs/cls/cifar10_wrn34_10_nat.py'))
