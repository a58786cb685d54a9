"""Classifier weights from the checkpoint formats we meet: the trainer's, a ``Classifier``'s
state_dict, or a bare network's."""
from nat_tasks.core.checkpoint import load_state_dict, load_weights

from nat_tasks.cls.models.architectures import build_classifier, data_info

CHECKPOINT_PREFIX = "classifier."  # the trainer's keys: AdversarialClassifier.classifier


def load_classifier_weights(classifier, path, what="checkpoint"):
    """Load a ``Classifier`` from our (mmengine) checkpoint or a plain state_dict, strictly.

    Accepted: a trainer checkpoint (``classifier.*`` keys), a ``Classifier`` state_dict
    (``normalize.*``/``net.*``), or a bare network's state_dict (the config's mean/std are used).
    """
    if hasattr(classifier, "load_checkpoint"):  # a RobustBench zoo model: its own file conventions
        return classifier.load_checkpoint(path, what=what)
    keys = load_state_dict(path).keys()  # read twice (here and in load_weights): simple, rare
    if any(k.startswith(CHECKPOINT_PREFIX) for k in keys):
        return load_weights(classifier, path, prefix=CHECKPOINT_PREFIX, what=what)
    if any(k.startswith("normalize.") for k in keys):
        return load_weights(classifier, path, what=what)
    load_weights(classifier.net, path, what=what)
    return classifier


def classifier_from_config(model_cfg, checkpoint=None):
    """The ``Classifier`` of a trainer config's ``model`` section, with weights from ``checkpoint``."""
    classifier = build_classifier(model_cfg["arch"], **data_info(model_cfg))
    return classifier if checkpoint is None else load_classifier_weights(classifier, checkpoint)
