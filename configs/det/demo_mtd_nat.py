# The demo detector with MTD + NAT against the frozen vanilla demo detector.
#   python tools/train.py configs/det/demo_vanilla.py    # the adversary, first
#   python tools/train.py configs/det/demo_mtd_nat.py
_base_ = './demo_mtd.py'

model = dict(
    nasty=dict(
        weight=0.04,
        tau=4.0,
        scale_by_tau2=True,
        anchors='sampled',
        adversary=dict(
            config='{{fileDirname}}/demo_vanilla.py',
            checkpoint='work_dirs/demo_vanilla/epoch_12.pth')))
