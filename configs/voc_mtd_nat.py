# SSD300 with MTD + NAT (configs/det/voc_ssd300_mtd_nat.py) against the model that
# configs/voc_vanilla.py trains into work_dirs/voc_vanilla/.
#   python tools/train.py configs/voc_vanilla.py          # the adversary, first
#   python tools/train.py configs/voc_mtd_nat.py
_base_ = './det/voc_ssd300_mtd_nat.py'

model = dict(nasty=dict(adversary=dict(config='{{fileDirname}}/voc_vanilla.py',
                                       checkpoint='work_dirs/voc_vanilla/epoch_24.pth')))
