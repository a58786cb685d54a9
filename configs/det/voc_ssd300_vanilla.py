# SSD300 (VGG16) on VOC07+12, standard training: the baseline and the NAT adversary.
#   python tools/train.py configs/det/voc_ssd300_vanilla.py
# mmdet's config initialises VGG16 from open-mmlab://vgg16_caffe (a download): here the backbone
# starts from scratch unless you point it at a local file, e.g.
#   --cfg-options model.backbone.init_cfg.type=Pretrained \
#                 model.backbone.init_cfg.checkpoint=checkpoints/vgg16_caffe.pth
# or set load_from to a local detector checkpoint.
_base_ = 'mmdet::pascal_voc/ssd300_voc0712.py'
custom_imports = dict(imports=['nat_tasks.det'], allow_failed_imports=False)

data_root = 'data/VOCdevkit/'
model = dict(
    type='NatSingleStageDetector',
    backbone=dict(init_cfg=None),
    # SSDHeadPredictFix = SSDHead + the mmdet 3.3.0 predict fix (see nat_tasks/det/heads.py).
    bbox_head=dict(type='SSDHeadPredictFix'))
# 'atomic_local' (nat_tasks.runtime): a checkpoint is written whole or not at all
default_hooks = dict(checkpoint=dict(backend_args=dict(backend='atomic_local')))
