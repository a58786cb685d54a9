"""The one helper that strips training-only keys from a model config."""


def test_without_training_keys_strips_mtd_and_nasty_from_a_copy():
    from mmengine.config import ConfigDict

    from nat_tasks.det.model_cfg import TRAINING_ONLY_KEYS, without_training_keys

    assert TRAINING_ONLY_KEYS == ("mtd", "nasty")
    model = ConfigDict(type="NatSingleStageDetector", mtd=dict(eps=8), nasty=dict(weight=0.1),
                       bbox_head=dict(type="SSDHeadPredictFix"))
    stripped = without_training_keys(model)
    assert stripped == ConfigDict(type="NatSingleStageDetector", bbox_head=dict(type="SSDHeadPredictFix"))
    assert "mtd" in model and "nasty" in model  # the config itself is untouched
    stripped.bbox_head.type = "other"
    assert model.bbox_head.type == "SSDHeadPredictFix"
