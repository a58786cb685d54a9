# LAS-AT's WRN-34-10 (Jia et al. 2022, a baseline of the paper's Tables 1, 2 and 5) from the RobustBench
# model zoo: to evaluate beside ours, or as a transfer surrogate, an adversary or a teacher (its arch
# string works in any member). RobustBench models take [0, 1] images and normalise inside.
# Weights are never downloaded: put the zoo's file at models/cifar10/Linf/Jia2022LAS-AT_34_10.pt
# (RobustBench's layout <models_dir>/<dataset>/<threat_model>/<name>.pt), then
#   python tools/eval_cls.py configs/cls/cifar10_robustbench_las_at_wrn34_10.py \
#       models/cifar10/Linf/Jia2022LAS-AT_34_10.pt --attacks clean,pgd20,cw,aa
_base_ = ['./cifar10_preact18_vanilla.py']

model = dict(arch='robustbench:cifar10/Linf/Jia2022LAS-AT_34_10')
