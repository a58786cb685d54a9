"""The mmengine model of the classification trainer, its frozen adversary and its val metric.

``AdversarialClassifier.forward(inputs, labels, mode)``:
- ``'loss'``: runs the configured method (``methods.py``) on the batch. mmengine's DDP wrapper also
  calls ``forward(mode='loss')``, so one process and DDP run the same code, attack included.
- ``'predict'``: clean predictions for every sample, plus PGD predictions for the first
  ``val_attack['n_examples']`` samples of each validation run (split over the ranks; the val
  sampler shuffles with a fixed seed, so they are a fixed random subset), so every
  epoch reports ``clean_acc`` and ``robust_acc`` (``AdversarialAccuracy``) and ``CheckpointHook``
  can keep the best-robust checkpoint. Validation reads the held-out split (``data.py``), not
  the test split.
- ``'tensor'``: logits.

The network is the ``classifier`` submodule (a ``models.Classifier``: [0, 1] inputs, normalisation
inside), so checkpoint keys are ``classifier.*``. The adversary is a ``FrozenAdversary``: it owns
no parameters or buffers, so it is absent from the optimizer, DDP and the saved checkpoint.
"""
import os

import torch
from mmengine.dist import get_world_size
from mmengine.evaluator import BaseMetric
from mmengine.model import BaseModel
from mmengine.registry import METRICS, MODELS

from nat_tasks.core.adversary import FrozenAdversary, check_precision
from nat_tasks.core.attacks import pgd
from nat_tasks.core.checkpoint import load_state_dict, load_weights
from nat_tasks.core.errors import NatError, check_eps, check_finite

from .methods import build_method
from .models import build_classifier

CHECKPOINT_PREFIX = "classifier."


def load_classifier_weights(classifier, path, what="checkpoint"):
    """Load a ``Classifier`` from our (mmengine) checkpoint or a plain state_dict, strictly.

    Accepted: a trainer checkpoint (``classifier.*`` keys), a ``Classifier`` state_dict
    (``normalize.*``/``net.*``), or a bare network's state_dict (the config's mean/std are used).
    """
    keys = load_state_dict(path).keys()  # read twice (here and in load_weights): simple, rare
    if any(k.startswith(CHECKPOINT_PREFIX) for k in keys):
        return load_weights(classifier, path, prefix=CHECKPOINT_PREFIX, what=what)
    if any(k.startswith("normalize.") for k in keys):
        return load_weights(classifier, path, what=what)
    load_weights(classifier.net, path, what=what)
    return classifier


DATA_INFO_KEYS = ("num_classes", "in_channels", "image_size", "mean", "std")


def classifier_from_config(model_cfg, checkpoint=None):
    """The ``Classifier`` of a trainer config's ``model`` section, with weights from ``checkpoint``."""
    info = {k: model_cfg[k] for k in DATA_INFO_KEYS if k in model_cfg}
    classifier = build_classifier(model_cfg["arch"], **info)
    return classifier if checkpoint is None else load_classifier_weights(classifier, checkpoint)


def build_adversary(cfg, data_info, precision=None):
    """A ``FrozenAdversary`` from ``dict(arch, checkpoint, trained_by=None)`` or a list of them.

    ``checkpoint`` may be a list (an ensemble of one architecture); a list of dicts mixes
    architectures (Table 7's ensemble). ``trained_by`` names the config that trains the adversary,
    quoted when its checkpoint is missing.
    """
    check_precision(precision)  # before any checkpoint is read
    members = []
    for entry in cfg if isinstance(cfg, (list, tuple)) else [cfg]:
        entry = dict(entry)
        unknown = set(entry) - {"arch", "checkpoint", "trained_by"}
        if "arch" not in entry or "checkpoint" not in entry or unknown:
            raise NatError("model.adversary must be dict(arch=..., checkpoint=..., trained_by=...) "
                           f"or a list of them, got keys {sorted(entry)}")
        paths = entry["checkpoint"]
        paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
        members += [(entry["arch"], path, entry.get("trained_by")) for path in paths]
    if not members:
        raise NatError("model.adversary lists no checkpoint")
    models = []
    for arch, path, trained_by in members:
        if not os.path.isfile(path):
            hint = f"; train it with `python tools/train_cls.py {trained_by}`" if trained_by else ""
            raise NatError(f"adversary checkpoint {path} not found{hint}")
        what = f"adversary checkpoint ({arch}, {data_info['num_classes']} classes)"
        models.append(load_classifier_weights(build_classifier(arch, **data_info), path, what=what))
    return FrozenAdversary(models, precision)


@MODELS.register_module()
class AdversarialClassifier(BaseModel):
    """A [0, 1]-input classifier trained by one method (``vanilla``, ``pgd_at``, ``trades``, ``nat``).

    - ``arch``, ``num_classes``, ``in_channels``, ``image_size``, ``mean``, ``std``: the network
      (``models.build_classifier``).
    - ``method``: ``dict(type=name, **settings)`` (``methods.build_method``).
    - ``adversary``: for NAT, ``dict(arch, checkpoint, trained_by)`` or a list (ensemble).
    - ``adversary_precision``: ``None`` (float32) or ``'bfloat16'``/``'float16'``: the adversary's
      forward under autocast, about half its cost on hardware with fast bfloat16/float16.
    - ``val_attack``: ``dict(eps, alpha, steps, n_examples)``: the Linf PGD of validation.
    """

    def __init__(self, arch, num_classes, method, *, in_channels=3, image_size=32, mean=None, std=None,
                 adversary=None, adversary_precision=None, val_attack=None, data_preprocessor=None,
                 init_cfg=None):
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        data_info = dict(num_classes=num_classes, in_channels=in_channels, image_size=image_size,
                         mean=mean, std=std)
        self.classifier = build_classifier(arch, **data_info)
        self.adversary = (build_adversary(adversary, data_info, adversary_precision)
                          if adversary is not None else None)
        self.method = build_method(method, adversary=self.adversary)
        self.val_attack = {**dict(eps=8 / 255, alpha=2 / 255, steps=10, n_examples=1000), **(val_attack or {})}
        check_eps(self.val_attack["eps"], what="val_attack eps")
        self._val_attack_left = 0

    def forward(self, inputs, labels=None, mode="tensor"):
        if mode == "loss":
            return self.method(self.classifier, inputs, labels)
        if mode == "predict":
            return self.predict(inputs, labels)
        if mode == "tensor":
            return self.classifier(inputs)
        raise ValueError(f"unknown forward mode {mode!r}")

    def parse_losses(self, losses):
        loss, log_vars = super().parse_losses(losses)
        check_finite(loss, what=f"the {self.method.name} training loss")
        return loss, log_vars

    def train(self, mode=True):
        # mmengine's ValLoop calls .eval() at the start of every validation run: the PGD budget of
        # the run (its first n examples, split over the ranks) starts afresh.
        if not mode:
            self._val_attack_left = -(-self.val_attack["n_examples"] // get_world_size())
        return super().train(mode)

    def predict(self, inputs, labels):
        with torch.no_grad():
            correct = self.classifier(inputs).argmax(dim=1) == labels
        adv_correct = [None] * len(inputs)
        n = min(len(inputs), self._val_attack_left)
        if n > 0:
            attack = {k: v for k, v in self.val_attack.items() if k != "n_examples"}
            x_adv = pgd(self.classifier, inputs[:n], labels[:n], **attack)  # enables grad itself
            with torch.no_grad():
                adv_correct[:n] = (self.classifier(x_adv).argmax(dim=1) == labels[:n]).tolist()
            self._val_attack_left -= n
        return [dict(correct=c, adv_correct=a) for c, a in zip(correct.tolist(), adv_correct)]


@METRICS.register_module()
class AdversarialAccuracy(BaseMetric):
    """``clean_acc`` over all validation samples and ``robust_acc`` over the attacked ones (%).

    An attacked sample is robust only if it is classified correctly both clean and under attack
    (RobustBench / AutoAttack): a sample wrong clean is broken whatever the attack returns, so
    ``robust_acc`` never exceeds the clean accuracy of the attacked samples.
    """

    def process(self, data_batch, data_samples):
        self.results.extend((s["correct"], s["adv_correct"]) for s in data_samples)

    def compute_metrics(self, results):
        clean = [c for c, _ in results]
        robust = [c and a for c, a in results if a is not None]
        metrics = dict(clean_acc=100.0 * sum(clean) / max(len(clean), 1))
        if robust:
            metrics["robust_acc"] = 100.0 * sum(robust) / len(robust)
        return metrics
