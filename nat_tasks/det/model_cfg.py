"""Model configs of the plug-in: the keys only training reads.

``mtd`` (the training attack) and ``nasty`` (the NAT term and its adversary) configure how a
detector *trains*; predicting, evaluating or serving as someone's adversary needs neither (and a
``nasty`` section would load an adversary of its own).
"""
import copy

TRAINING_ONLY_KEYS = ("mtd", "nasty")


def without_training_keys(model_cfg):
    """A copy of ``model_cfg`` without ``mtd`` and ``nasty``: the detector that only predicts."""
    model_cfg = copy.deepcopy(model_cfg)
    for key in TRAINING_ONLY_KEYS:
        model_cfg.pop(key, None)
    return model_cfg
