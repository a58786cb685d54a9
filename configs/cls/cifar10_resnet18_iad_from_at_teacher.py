# Table 10, IAD "From AT Teacher": a ResNet-18 student distilled by IAD-I (Zhu et al. 2022, the
# ARD-based variant) from the PGD-AT WRN-34-10 of cifar10_wrn34_10_pgdat.py. The paper gives no
# distillation recipe; this is IAD's code (ZFancy/IAD IAD-I.py, its defaults): temperature 1,
# weight (its alpha) 1, beta 0.1, introspection from epoch 60 (0-based), batch 128, SGD lr 0.1
# momentum 0.9 wd 2e-4, 200 epochs, x0.1 at 100 and 150; attack PGD-10 on the student's CE, Linf
# 8/255, step 2/255.
# Paper's student (Table 10): clean 74.72, PGD-20 41.91, AA 37.55 (from the NAT teacher: 74.29,
# 41.61, 36.25).
_base_ = ['./cifar10_resnet18_ard_from_at_teacher.py']

model = dict(method=dict(_delete_=True, type='iad', eps=8 / 255, alpha=2 / 255, steps=10,
                         temperature=1.0, weight=1.0, beta=0.1, begin=60))
