"""RobustBench model-zoo networks as our classifiers: the ``robustbench`` package's model
definitions, the weights from a local file, never a download.

An architecture name ``robustbench:<dataset>/<threat_model>/<name>`` (e.g.
``robustbench:cifar10/Linf/Carmon2019Unlabeled``) works wherever an ``arch`` does: a config's
``model.arch`` (a target to evaluate), an adversary or teacher member's ``arch``, a surrogate's
config. Its weights are the member's ``checkpoint`` (or the evaluated checkpoint), by convention in
RobustBench's own layout ``<models_dir>/<dataset>/<threat_model>/<name>.pt``, which
``robustbench.utils.load_model(name, model_dir=<models_dir>, dataset=..., threat_model=...)`` fills
on a machine with internet access; copy that folder here.

RobustBench's contract is ours: models take [0, 1] images and those that need normalisation carry
it inside. So the ``Classifier`` around a zoo model normalises nothing, whatever mean/std the config
states. Zoo files are read weights-only (``core.checkpoint.safe_load``), unlike robustbench's own
loader, and their key conventions (a ``state_dict`` entry, ``module.``/``model.`` prefixes, a
``last`` entry) are undone as robustbench's ``load_model`` does.
"""
import contextlib
import importlib
import importlib.metadata
import importlib.util
import inspect
import os
import sys
import warnings

import torch

from nat_tasks.core.checkpoint import load_weights, safe_load, state_dict_of
from nat_tasks.core.errors import NatError

from nat_tasks.cls.models.classifier import ZOO_PREFIX, Classifier

# The zoo's data sets (robustbench's BenchmarkDataset values) and their number of classes.
ZOO_CLASSES = {"cifar10": 10, "cifar100": 100, "imagenet": 1000}
# Buffers that some zoo files lack but the definition already holds (robustbench loads those files
# with strict=False for the same reason).
NORMALISATION_BUFFERS = ("mu", "sigma", "mean", "std", "normalize.mean", "normalize.std")


def zoo_entries(dataset, threat_model):
    """``{name: dict(model=constructor, gdrive_id=...)}`` of robustbench's model zoo."""
    if importlib.util.find_spec("robustbench") is None:
        raise NatError(f"{ZOO_PREFIX} architectures need the robustbench package: pip install robustbench==1.1.1 "
                       "(requirements.txt)")
    _alias_autoattack()
    with warnings.catch_warnings():  # robustbench's and timm's deprecation notices, at import
        warnings.simplefilter("ignore")
        from robustbench.model_zoo.enums import BenchmarkDataset, ThreatModel
        from robustbench.model_zoo.models import model_dicts
    try:
        return model_dicts[BenchmarkDataset(dataset)][ThreatModel(threat_model)]
    except (ValueError, KeyError):
        raise NatError(f"RobustBench has no {dataset}/{threat_model} models; data sets: "
                       f"{', '.join(ZOO_CLASSES)}, threat models: Linf, L2, corruptions") from None


def _alias_autoattack():
    """robustbench 1.1.1 imports ``autoattack`` (AutoAttack's git package) at import time, but
    declares the PyPI release ``pyautoattack``, the same code under another name: alias it."""
    try:
        importlib.import_module("autoattack")
    except ImportError:
        for module in ("", ".state"):
            sys.modules["autoattack" + module] = importlib.import_module("pyautoattack" + module)


class ZooClassifier(Classifier):
    """A zoo network behind an identity ``normalize`` (it normalises inside, if at all)."""

    def __init__(self, net, dataset, threat_model, name):
        super().__init__(net, mean=(0.0,) * 3, std=(1.0,) * 3)
        self.dataset, self.threat_model, self.name = dataset, threat_model, name

    @property
    def expected_path(self):
        return os.path.join("<models_dir>", self.dataset, self.threat_model, f"{self.name}.pt")

    def load_checkpoint(self, path, what="checkpoint"):
        """The zoo's file for this model, or our own checkpoint of it (a fine-tuned or trained one)."""
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise NatError(f"RobustBench weights not found: {path}; put the model zoo's {self.name}.pt "
                           f"there (RobustBench's layout: {self.expected_path}, as "
                           f"robustbench.utils.load_model(..., model_dir=<models_dir>) saves it)")
        checkpoint = safe_load(path)
        if isinstance(checkpoint, dict) and isinstance(checkpoint.get("last"), dict):
            checkpoint = checkpoint["last"]  # robustbench: Kireev2021Effectiveness, Andriushchenko2020Understanding
        state = state_dict_of(checkpoint, path)
        if any(k.startswith(("classifier.", "normalize.")) for k in state):
            prefix = "classifier." if any(k.startswith("classifier.") for k in state) else None
            return load_weights(self, path, prefix=prefix, what=what)  # ours
        self.net.load_state_dict(self._fit(state, path, what), strict=False)
        return self

    def _fit(self, state, path, what):
        """The zoo state dict with robustbench's prefixes undone, checked against the network."""
        own = self.net.state_dict()
        candidates = (state, _strip(state, "model."), {f"model.{k}": v for k, v in _strip(state, "model.").items()})
        for candidate in candidates:
            missing = set(own) - set(candidate)
            if set(candidate) <= set(own) and all(k in NORMALISATION_BUFFERS for k in missing):
                mismatched = [k for k, v in candidate.items() if v.shape != own[k].shape]
                if mismatched:
                    k = mismatched[0]
                    raise NatError(f"{what} {path} does not fit {ZOO_PREFIX}{self.dataset}/{self.threat_model}/"
                                   f"{self.name}: {k} {tuple(candidate[k].shape)} vs {tuple(own[k].shape)}")
                return candidate
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        raise NatError(f"{what} {path} does not fit {ZOO_PREFIX}{self.dataset}/{self.threat_model}/{self.name}: "
                       f"{len(missing)} missing keys (e.g. {missing[:1]}), {len(unexpected)} unexpected "
                       f"(e.g. {unexpected[:1]})")


def _asks_for_hub_weights(constructor):
    """Whether a zoo constructor's source asks torchvision or timm for their published weights
    (ImageNet's Standard_R50 and the XCiT/DeiT entries do: their weights *are* the hub's); such an
    entry is refused before it is built, so nothing is fetched."""
    try:
        return "pretrained=True" in inspect.getsource(constructor)
    except (OSError, TypeError):
        return False


@contextlib.contextmanager
def _no_weights_while_built(spec):
    """Build a zoo model with torch.hub's downloader and ``torch.load`` replaced by one-line errors:
    the source check above cannot see every path to pretrained weights. Refusing downloads is not
    enough: torch.hub reads a file it cached earlier without downloading, and unpickles it with
    ``weights_only=False`` (its default). The zoo's weights are read afterwards, by ``safe_load``."""
    def refuse_download(url, *args, **kwargs):
        raise NatError(f"{ZOO_PREFIX}{spec}: robustbench's definition downloads {url} when it is built, "
                       "which nat_tasks never does")

    def refuse_load(f, *args, **kwargs):
        raise NatError(f"{ZOO_PREFIX}{spec}: robustbench's definition loads {f} when it is built, "
                       "which nat_tasks never does")
    saved = torch.hub.download_url_to_file, torch.load
    torch.hub.download_url_to_file, torch.load = refuse_download, refuse_load
    try:
        yield
    finally:
        torch.hub.download_url_to_file, torch.load = saved


def _strip(state, prefix):
    return {k[len(prefix):] if k.startswith(prefix) else k: v for k, v in state.items()}


def build_zoo_classifier(spec, num_classes, in_channels, image_size):
    """``spec = '<dataset>/<threat_model>/<name>'`` -> a ``ZooClassifier`` with random weights
    (robustbench's definition; nothing is downloaded)."""
    parts = spec.split("/")
    if len(parts) != 3 or not all(parts):
        raise NatError(f"{ZOO_PREFIX}{spec}: expected {ZOO_PREFIX}<dataset>/<threat_model>/<name>, "
                       f"e.g. {ZOO_PREFIX}cifar10/Linf/Carmon2019Unlabeled")
    dataset, threat_model, name = parts
    entries = zoo_entries(dataset, threat_model)
    if name not in entries:
        raise NatError(f"RobustBench has no {dataset}/{threat_model} model {name!r} (robustbench "
                       f"{importlib.metadata.version('robustbench')}); e.g. {', '.join(list(entries)[:3])}")
    if isinstance(entries[name]["gdrive_id"], list):
        raise NatError(f"{ZOO_PREFIX}{spec} is an ensemble of several zoo files, which is not supported")
    if _asks_for_hub_weights(entries[name]["model"]):
        raise NatError(f"{ZOO_PREFIX}{spec}: robustbench's definition downloads pretrained weights when "
                       "it is built (torchvision/timm hub weights), which nat_tasks never does")
    if (ZOO_CLASSES[dataset], in_channels) != (num_classes, 3):
        raise NatError(f"{ZOO_PREFIX}{spec} predicts {ZOO_CLASSES[dataset]} classes of RGB images, but the "
                       f"config has {num_classes} classes and {in_channels} channels")
    with _no_weights_while_built(spec):
        net = entries[name]["model"]()
    return ZooClassifier(net, dataset, threat_model, name)
