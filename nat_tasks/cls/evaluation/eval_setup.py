"""What a classification evaluation takes from its command line, shared by ``tools/eval_cls.py``,
``tools/analyze_cls.py`` and ``tools/report_cls.py``: the evaluation options, the models (CONFIG
CKPT pairs and their labels), the examples of a config's test split, ``CONFIG:CHECKPOINT`` specs
(surrogates), the threat model, what identifies a resumable evaluation and how a checkpoint was
selected. One place, so every tool evaluates by the same rules.
"""
import inspect
import os

import torch
from mmengine.config import DictAction
from mmengine.registry import DATASETS

from nat_tasks.core.checkpoint import safe_load
from nat_tasks.core.errors import NatError
from nat_tasks.runtime.eval_store import file_sha256

from nat_tasks.cls.models.architectures import DATA_INFO_KEYS
from nat_tasks.cls.evaluation.attacks import REGISTRY, SparseThreat, ThreatModel
from nat_tasks.cls.evaluation.eval_state import examples_sha256
from nat_tasks.cls.data.subsets import subset_indices
from nat_tasks.cls.training.train import check_num_classes, load_cls_config
from nat_tasks.cls.models.weights import classifier_from_config


def add_evaluation_options(parser):
    """The options every attack evaluation takes (attacks, threat model, checklist budgets, batching,
    device, seed, data)."""
    parser.add_argument("--attacks",
                        help=f"comma-separated, each one of: {REGISTRY.syntax()} (default clean,pgd20,aa; "
                        "under --threat l0: clean,saa)")
    parser.add_argument("--threat", default="linf", type=str.lower,
                        help="linf (default: --eps/--alpha or the config's val_attack) or l0 (with --k)")
    parser.add_argument("--k", type=int, help="--threat l0: the budget in pixel locations (CIFAR: 20)")
    parser.add_argument("--surrogate", metavar="CONFIG:CHECKPOINT",
                        help="a classifier to craft transfer-* attacks on (black-box transfer)")
    parser.add_argument("--square-queries", type=int, default=5000, help="Square's budget in the checklist")
    parser.add_argument("--gap-threshold", type=float, default=5.0,
                        help="checklist: flag a PGD-20 - AutoAttack gap above this many points")
    parser.add_argument("--batch-size", type=int, default=500,
                        help="examples per attacked batch; each batch is seeded from --seed and its index")
    parser.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda if available, else cpu)")
    parser.add_argument("--eps", type=float, help="Linf budget in [0, 1] (default: the config's val_attack)")
    parser.add_argument("--alpha", type=float, help="PGD step (default: the config's val_attack)")
    parser.add_argument("--seed", type=int, default=0, help="the seed every batch's seed derives from")
    parser.add_argument("--data-root", help="the dataset folder (overrides the config's data_root)")
    parser.add_argument("--cfg-options", nargs="+", action=DictAction, metavar="KEY=VALUE",
                        help="override config keys (mmengine syntax)")


def attack_names(text, threat):
    """``--attacks`` as a list of names (default clean,pgd20,aa; under l0 clean,saa)."""
    names = text if text is not None else ("clean,saa" if threat.norm == "L0" else "clean,pgd20,aa")
    return [a.strip() for a in names.split(",") if a.strip()]


def model_list(pairs, labels):
    """[(label, config, checkpoint)] from the positional CONFIG CKPT pairs and ``--labels``."""
    if len(pairs) % 2:
        raise NatError(f"expected CONFIG CKPT pairs, got {len(pairs)} path(s): {' '.join(pairs)}")
    configs, checkpoints = pairs[0::2], pairs[1::2]
    stem = lambda path: os.path.splitext(os.path.basename(path))[0]  # noqa: E731
    if labels is None:
        names = [stem(c) for c in configs]
        if len(set(names)) != len(names):
            names = [f"{stem(c)}:{stem(k)}" for c, k in zip(configs, checkpoints)]
    else:
        names = [n.strip() for n in labels.split(",")]
        if len(names) != len(configs) or not all(names):
            raise NatError(f"--labels gives {len(names)} label(s) for {len(configs)} model(s): "
                           "one per CONFIG CKPT pair")
    if len(set(names)) != len(names):
        raise NatError(f"the labels must differ, got {','.join(names)} (pass --labels)")
    for path in checkpoints:
        if not os.path.isfile(path):
            raise NatError(f"checkpoint not found: {path}")
    return list(zip(names, configs, checkpoints))


def check_one_data_set(cfgs):
    """``cfgs``: {label: config}; the same examples must fit every model (one data set)."""
    (first_label, first), *_ = cfgs.items()
    wanted = {k: first.model.get(k) for k in DATA_INFO_KEYS[:3]}
    for label, cfg in cfgs.items():
        data = {k: cfg.model.get(k) for k in DATA_INFO_KEYS[:3]}
        if data != wanted:
            raise NatError(f"{label}'s config has other data ({data}) than {first_label}'s: compare models of one "
                           "data set")


def load_examples(cfg, n):
    """``n`` examples of the config's test split (its validation split when it has none; a fixed
    subset, ``subset_indices``; its classes must be the model's): their indices in it, the images, the labels and the class names
    (None when the data set has none)."""
    if n is not None and n < 1:
        raise NatError("--n-examples must be at least 1")
    dataset_cfg = cfg.test_dataloader.dataset if cfg.get("test_dataloader") else cfg.val_dataloader.dataset
    dataset = DATASETS.build(dataset_cfg)
    check_num_classes(cfg.model, dataset, dataset_cfg.get("data_root"))
    indices = subset_indices(len(dataset), n)
    samples = [dataset[i] for i in indices]
    names = getattr(dataset, "classes", None)
    return (indices, torch.stack([s["inputs"] for s in samples]), torch.tensor([s["labels"] for s in samples]),
            [str(name) for name in names] if names is not None else None)


def check_spec(spec, option):
    """A ``CONFIG:CHECKPOINT`` option value whose two files exist."""
    config, sep, checkpoint = spec.rpartition(":")
    if not sep or not config or not checkpoint:
        raise NatError(f"{option} expects CONFIG:CHECKPOINT, got {spec!r}")
    for what, path in (("config", config), ("checkpoint", checkpoint)):
        if not os.path.isfile(path):
            raise NatError(f"{option} {spec}: {what} file not found: {path}")
    return spec


def load_surrogate(spec, data_root, option="--surrogate"):
    """``CONFIG:CHECKPOINT`` -> the [0, 1]-input classifier of that config with those weights."""
    config, _, checkpoint = check_spec(spec, option).rpartition(":")
    return classifier_from_config(load_cls_config(config, data_root=data_root).model, checkpoint)


def model_selection(checkpoint):
    """How the trainer chose this checkpoint ('validation (n=...)' or 'test-selected'), as recorded
    in its meta (a file from elsewhere did not record it), and the trainer's warning if it was saved
    at chance level (``runtime.health``), or None."""
    meta = safe_load(checkpoint).get("meta") or {}
    return meta.get("model_selection", "not recorded (not a nat_tasks trainer checkpoint)"), meta.get("health")


def needs(attacks, entry):
    """Whether one of the named attacks takes ``entry`` (e.g. 'adversary', 'surrogate') from the run."""
    return any(entry in inspect.signature(REGISTRY.match(name)[0]).parameters for name in attacks)


def threat_model(options, cfg):
    """``--threat linf`` (``--eps``/``--alpha`` or the config's val_attack) or ``--threat l0 --k K``;
    ``options``: the parsed ``add_evaluation_options`` (and ``checklist`` where the tool has it)."""
    if options.threat not in ("linf", "l0"):
        raise NatError(f"--threat {options.threat!r}: expected linf or l0")
    if options.threat == "l0":
        if options.k is None:
            raise NatError("--threat l0 needs --k (the budget in pixel locations, e.g. 20 on CIFAR)")
        if options.eps is not None or options.alpha is not None:
            raise NatError("--eps/--alpha set the Linf threat model; under --threat l0 the budget is --k")
        if getattr(options, "checklist", False):
            raise NatError("--checklist checks the Linf threat model; run it without --threat l0")
        return SparseThreat(k=options.k)
    if options.k is not None:
        raise NatError("--k is the l0 budget: add --threat l0")
    val_attack = cfg.model.get("val_attack", {})
    eps = options.eps if options.eps is not None else val_attack.get("eps")
    alpha = options.alpha if options.alpha is not None else val_attack.get("alpha")
    if eps is None or alpha is None:
        raise NatError("no threat model: pass --eps and --alpha (the config has no model.val_attack)")
    return ThreatModel(eps=float(eps), alpha=float(alpha))


def threat_record(threat):
    if threat.norm == "L0":
        return dict(norm="L0", k=threat.k)
    return dict(norm=threat.norm, eps=threat.eps, alpha=threat.alpha)


def state_identity(checkpoint, attacks, x, y, nasty=None, surrogates=()):
    """What, besides the attacks and their settings, makes a saved evaluation this one: the
    checkpoint (path and content), the examples, and the other models' weights the attacks use."""
    identity = dict(checkpoint=os.path.abspath(checkpoint), checkpoint_sha256=file_sha256(checkpoint),
                    examples_sha256=examples_sha256(x, y),
                    surrogates={spec: file_sha256(spec.rpartition(":")[2]) for spec in surrogates})
    if needs(attacks, "adversary"):
        identity["adversary_sha256"] = [file_sha256(m["checkpoint"]) for m in nasty.members]
    return identity
