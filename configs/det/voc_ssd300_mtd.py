# SSD300 with MTD adversarial training (Zhang & Wang, ICCV 2019): per image, the worse of a
# classification-loss and a localisation-loss attack, Linf eps 8 on the 0..255 scale.
#   python tools/train.py configs/det/voc_ssd300_mtd.py
_base_ = './voc_ssd300_vanilla.py'

# One step of size eps from a random start (see nat_tasks/det/mtd.py for this choice).
model = dict(mtd=dict(eps=8, alpha=8, steps=1, random_start=True))
