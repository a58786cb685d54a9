"""The mmengine model of the classification trainer.

``AdversarialClassifier.forward(inputs, labels, mode)``:
- ``'loss'``: runs the configured method (``methods/``) on the batch (with the batch's ``index``
  when the method takes it). mmengine's DDP wrapper also
  calls ``forward(mode='loss')``, so one process and DDP run the same code, attack included.
- ``'predict'``: clean predictions for every sample, plus PGD predictions for the first
  ``val_attack['n_examples']`` samples of each validation run (split over the ranks; the val
  sampler shuffles with a fixed seed, so they are a fixed random subset), so every
  epoch reports ``clean_acc`` and ``robust_acc`` (``metric.AdversarialAccuracy``) and
  ``CheckpointHook`` can keep the best-robust checkpoint. Validation reads the held-out split
  (``data.py``), not the test split.
- ``'tensor'``: logits.

The network is the ``classifier`` submodule (an ``architectures.Classifier``: [0, 1] inputs,
normalisation inside), so checkpoint keys are ``classifier.*``. NAT's adversary
(``model.nasty``, ``nasty_section.py``) is a ``FrozenAdversary``: it owns no parameters or
buffers, so it is absent from the optimizer, DDP and the saved checkpoint.

Other context a method needs comes from a config section registered with ``register_section``
(``model.<name>=dict(...)``, built once per run). A context object that is a module is kept under
``method_state.<name>``, so it follows the model's device moves; its state (parameters or
buffers), if any, is saved in checkpoints and restored by ``--resume``.
"""
import torch
from torch import nn
from mmengine.dist import get_world_size
from mmengine.model import BaseModel
from mmengine.registry import MODELS

from nat_tasks.core.attacks import pgd
from nat_tasks.core.sparse import check_k, check_l0, spgd
from nat_tasks.core.errors import NatError, check_eps, check_finite

from nat_tasks.cls.models.architectures import build_classifier
from nat_tasks.cls.methods import build_method
from nat_tasks.cls.training.nasty_section import build_adversary, nasty_spec
from nat_tasks.runtime.run_progress import runner_epoch

# model.<name> -> builder(section_cfg, data_info) -> dict of named context objects for the method
SECTIONS = {}


def register_section(name, builder):
    """Let configs say ``model.<name>=dict(...)``: ``builder(section, data_info)`` returns the
    context objects (``{name: object}``) the section offers to methods."""
    SECTIONS[name] = builder


@MODELS.register_module()
class AdversarialClassifier(BaseModel):
    """A [0, 1]-input classifier trained by one method (``vanilla``, ``pgd_at``, ``trades``, ``nat``).

    - ``arch``, ``num_classes``, ``in_channels``, ``image_size``, ``mean``, ``std``: the network
      (``architectures.build_classifier``).
    - ``method``: ``dict(type=name, **settings)`` (``methods.build_method``).
    - ``nasty``: for NAT, ``dict(weight, tau, scale_by_tau2, adversary=dict(arch, checkpoint,
      trained_by, precision))`` (``nasty_section.py``); the adversary may be a list (ensemble).
    - ``val_attack``: ``dict(eps, alpha, steps, n_examples)``: the Linf PGD of validation, or
      ``dict(threat='l0', k, steps, n_examples)``: sPGD (unprojected, at most ``k`` pixel
      locations; every batch checked) for models of the l0 threat model.
    """

    def __init__(self, arch, num_classes, method, *, in_channels=3, image_size=32, mean=None, std=None,
                 nasty=None, val_attack=None, data_preprocessor=None, init_cfg=None, **unknown):
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        spec = nasty_spec(dict(unknown, method=method, nasty=nasty))  # first: names a moved key
        sections = {key: unknown.pop(key) for key in list(unknown) if key in SECTIONS}
        if unknown:
            raise NatError(f"unknown key model.{sorted(unknown)[0]}")
        data_info = dict(num_classes=num_classes, in_channels=in_channels, image_size=image_size,
                         mean=mean, std=std)
        self.classifier = build_classifier(arch, **data_info)
        self.adversary = build_adversary(spec, data_info) if spec is not None else None
        context = dict(adversary=self.adversary, nasty_loss=spec.loss() if spec is not None else None,
                       epoch_source=runner_epoch)
        for key, section in sections.items():
            context.update(SECTIONS[key](section, data_info))
        self.method = build_method(method, **context)
        # every module context follows .to(); a stateless one (a FrozenAdversary teacher) adds no key
        self.method_state = nn.ModuleDict({
            name: obj for name, obj in self.method.context.items() if isinstance(obj, nn.Module)})
        self.val_attack = _val_attack(val_attack, image_size)
        self._val_attack_left = 0

    def forward(self, inputs, labels=None, index=None, mode="tensor"):
        if mode == "loss":
            return self.method(self.classifier, inputs, labels, index=index)
        if mode == "predict":
            return self.predict(inputs, labels)
        if mode == "tensor":
            return self.classifier(inputs)
        raise ValueError(f"unknown forward mode {mode!r}")

    def parse_losses(self, losses):
        loss, log_vars = super().parse_losses(losses)
        check_finite(loss, what=f"the {self.method.name} training loss", terms=losses)
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
            attack = {k: v for k, v in self.val_attack.items() if k not in ("n_examples", "threat")}
            if self.val_attack["threat"] == "l0":
                x_adv = check_l0(spgd(self.classifier, inputs[:n], labels[:n], **attack), inputs[:n], attack["k"])
            else:
                x_adv = pgd(self.classifier, inputs[:n], labels[:n], **attack)  # enables grad itself
            with torch.no_grad():
                adv_correct[:n] = (self.classifier(x_adv).argmax(dim=1) == labels[:n]).tolist()
            self._val_attack_left -= n
        return [dict(correct=c, adv_correct=a) for c, a in zip(correct.tolist(), adv_correct)]


def _val_attack(cfg, image_size):
    """``model.val_attack`` with its threat model's defaults, checked (``image_size``: the l0 budget's bound)."""
    cfg = dict(cfg or {})
    threat = cfg.setdefault("threat", "linf")
    if threat == "l0":
        cfg = {**dict(steps=100, n_examples=1000), **cfg}
        if "k" not in cfg:
            raise NatError("model.val_attack with threat='l0' needs k (pixel locations), e.g. k=20")
        check_k(cfg["k"], torch.empty(1, 1, image_size, image_size))
        return cfg
    if threat != "linf":
        raise NatError(f"model.val_attack.threat must be 'linf' or 'l0', got {threat!r}")
    cfg = {**dict(eps=8 / 255, alpha=2 / 255, steps=10, n_examples=1000), **cfg}
    check_eps(cfg["eps"], what="val_attack eps")
    return cfg
