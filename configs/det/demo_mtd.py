# The demo detector with MTD adversarial training (eps 8 on 0..255, one step from a random start).
#   python tools/train.py configs/det/demo_mtd.py
_base_ = './demo_vanilla.py'

model = dict(mtd=dict(eps=8, alpha=8, steps=1, random_start=True))
