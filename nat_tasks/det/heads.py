"""Head fixes registered in mmdet's MODELS."""
from mmdet.models.dense_heads import SSDHead
from mmdet.registry import MODELS


@MODELS.register_module()
class SSDHeadPredictFix(SSDHead):
    """``SSDHead`` that can predict: mmdet 3.3.0's ``_predict_by_feat_single`` reads
    ``self.loss_cls``, which ``SSDHead`` never sets (its loss is hard-coded softmax CE).
    Nothing else differs: training, checkpoints and outputs are ``SSDHead``'s."""

    loss_cls = None
