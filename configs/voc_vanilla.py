# SSD300 (VGG16) on VOC07+12, standard training: the baseline and the NAT adversary of
# voc_mtd_nat.py. The model lives in configs/det/voc_ssd300_vanilla.py.
#   python tools/train.py configs/voc_vanilla.py          # writes work_dirs/voc_vanilla/
_base_ = './det/voc_ssd300_vanilla.py'
