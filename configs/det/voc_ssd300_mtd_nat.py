# SSD300 with MTD + NAT: the nasty term on the anchors' softmax scores against a frozen vanilla
# SSD300 (train configs/det/voc_ssd300_vanilla.py first; its last checkpoint is the adversary).
#   python tools/train.py configs/det/voc_ssd300_mtd_nat.py
_base_ = './voc_ssd300_mtd.py'

model = dict(
    nasty=dict(
        # The paper's text gives w = 0.006 and no tau; tau = 4 follows Nasty Teacher (CIFAR-10).
        # The term is normalised like SSD's CE: sum over the chosen anchors / number of positives.
        weight=0.006,
        tau=4.0,
        scale_by_tau2=True,
        # 'sampled': positives + SSD's hard-mined negatives (the anchors its CE trains on); 'all'.
        anchors='sampled',
        adversary=dict(
            config='{{fileDirname}}/voc_ssd300_vanilla.py',
            checkpoint='work_dirs/voc_ssd300_vanilla/epoch_24.pth',
            # 'bfloat16'/'float16': the frozen adversary runs under autocast (cheaper on fast-bf16 GPUs).
            precision=None)))
