# SSD300 with MTD adversarial training (configs/det/voc_ssd300_mtd.py).
#   python tools/train.py configs/voc_mtd.py
_base_ = './det/voc_ssd300_mtd.py'
