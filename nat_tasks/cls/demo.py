"""The embedded demo: vanilla, PGD-AT and NAT on 4000 real MNIST digits, evaluated on 1000 held out.

``python tools/train_cls.py`` (no config) runs it on CPU in minutes, with nothing to download:
1. trains the adversary (vanilla small CNN), then PGD-AT and NAT with the same seed and schedule,
   each through the real trainer (``configs/cls/mnist_small_cnn_*.py`` on mmengine's Runner);
2. evaluates the three last checkpoints on held-out digits (Linf eps 0.3): clean and PGD-20 on
   ``n_eval`` of them; on ``n_autoattack`` of those, the standard AutoAttack (APGD-CE, APGD-T,
   FAB-T, Square; ``--demo-options autoattack=apgd-ce-100`` runs only its first attack, minutes
   faster on a CPU);
3. writes ``results.json``, ``results.md`` and ``sparsity.png`` (sorted mean softmax
   probabilities, the paper's Fig. 3) to the work dir and prints the table.
Budget knobs (``DemoSettings``) are set with ``--demo-options key=value``.
"""
import dataclasses
import json
import os
import time

import torch

from nat_tasks.core.checkpoint import atomic_write_text
from nat_tasks.core.errors import NatError
from nat_tasks.core.pixel import default_device

from .train import last_checkpoint, load_config, select_device, train

CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                          "configs", "cls")
MODELS = (("vanilla", "VT (adversary)", "mnist_small_cnn_vanilla.py"),
          ("pgdat", "PGD-AT", "mnist_small_cnn_pgdat.py"),
          ("nat", "NAT", "mnist_small_cnn_nat.py"))


@dataclasses.dataclass
class DemoSettings:
    vanilla_epochs: int = 1      # the adversary: ~90% clean accuracy after one epoch
    at_epochs: int = 2           # PGD-AT and NAT, same seed and schedule
    warmup_epochs: int = 1       # linear eps ramp 0 -> 0.3 over the first epoch (EpsWarmupHook)
    train_steps: int = 2         # PGD steps in training (random start)
    train_alpha: float = 0.2     # PGD step in training (2 x 0.2 reaches the 0.3 ball's far side)
    nat_w: float = 0.006         # the paper's text (with tau 4 and the tau^2 factor)
    nat_tau: float = 4.0
    eps: float = 0.3             # Linf budget of training and evaluation
    eval_alpha: float = 0.03     # PGD-20 step in evaluation
    train_digits: int = 4000     # of the 5000; the rest is held out (stratified, fixed split)
    n_eval: int = 500            # held-out digits (a fixed random subset) for clean / PGD-20
    n_val_attack: int = 100      # held-out digits attacked (PGD-10) by each epoch's validation
    autoattack: str = "aa"       # standard AutoAttack; "apgd-ce-100" = its first attack only
    n_autoattack: int = 100      # held-out digits (a subset of the n_eval) for AutoAttack
    seed: int = 0

    @classmethod
    def from_options(cls, options):
        defaults = {f.name: f.default for f in dataclasses.fields(cls)}
        unknown = sorted(set(options or {}) - set(defaults))
        if unknown:
            raise NatError(f"unknown demo option(s) {unknown}; expected some of {sorted(defaults)}")
        try:
            return cls(**{k: type(defaults[k])(v) for k, v in (options or {}).items()})
        except ValueError as err:
            raise NatError(f"bad demo option: {err}") from None


def _train_all(work_dir, s):
    """Train the three models through the real configs; returns {key: last checkpoint path}."""
    checkpoints = {}
    for key, _, config in MODELS:
        epochs = s.vanilla_epochs if key == "vanilla" else s.at_epochs
        split = dict(test_size=5000 - s.train_digits)
        options = {"train_cfg.max_epochs": epochs, "randomness.seed": s.seed,
                   "train_dataloader.dataset": split, "val_dataloader.dataset": split,
                   "model.val_attack": dict(n_examples=s.n_val_attack, steps=10, alpha=0.05),
                   "param_scheduler": [dict(type="MultiStepLR", by_epoch=True, milestones=[max(1, int(0.8 * epochs))],
                                            gamma=0.1)]}
        if key != "vanilla":
            options.update({"model.method.eps": s.eps, "model.method.steps": s.train_steps,
                            "model.method.alpha": s.train_alpha,
                            "custom_hooks": [dict(type="EpochSeedHook"),
                                             dict(type="EpsWarmupHook", epochs=s.warmup_epochs)]})
        if key == "nat":
            options.update({"model.method.w": s.nat_w, "model.method.tau": s.nat_tau,
                            "model.adversary.checkpoint": checkpoints["vanilla"]})
        cfg = load_config(os.path.join(CONFIG_DIR, config), work_dir=os.path.join(work_dir, key),
                          cfg_options=options)
        runner = train(cfg)
        checkpoints[key] = last_checkpoint(runner.work_dir)
        del runner
    return checkpoints


def run_demo(work_dir="work_dirs/demo", device=None, options=None, log=print):
    """Run the whole demo; returns the results dict also written to ``<work_dir>/results.json``."""
    from .classifier import load_classifier_weights
    from .data import EmbeddedMNIST
    from .evaluation import ThreatModel, describe_attack, evaluate, markdown_table, parse_attack, subset_indices
    from .models import build_classifier
    from .sparsity import plot_sparsity, sorted_mean_probabilities, tail_mass

    s = DemoSettings.from_options(options)
    select_device(device)
    start = time.perf_counter()
    checkpoints = _train_all(work_dir, s)
    train_seconds = time.perf_counter() - start

    test = EmbeddedMNIST(split="test", test_size=5000 - s.train_digits)
    index = subset_indices(len(test), s.n_eval)  # the test split is sorted by class: sample it
    x = torch.stack([test[i]["inputs"] for i in index])
    y = torch.tensor([test[i]["labels"] for i in index])
    n, n_aa = len(index), min(s.n_autoattack, len(index))
    aa_index = subset_indices(n, n_aa)
    threat = ThreatModel(eps=s.eps, alpha=s.eval_alpha)
    info = dict(num_classes=EmbeddedMNIST.num_classes, in_channels=EmbeddedMNIST.in_channels,
                image_size=EmbeddedMNIST.image_size, mean=EmbeddedMNIST.mean, std=EmbeddedMNIST.std)
    device = default_device()  # after select_device: 'cpu' when --device cpu hid the GPUs
    rows, curves = [], {}
    for key, label, _ in MODELS:
        model = load_classifier_weights(build_classifier("small_cnn", **info), checkpoints[key]).to(device).eval()
        log(f"== evaluating {label} ({checkpoints[key]})")
        results = evaluate(model, x, y, ["clean", "pgd20"], threat, seed=s.seed, log=log)
        results += evaluate(model, x[aa_index], y[aa_index], [s.autoattack], threat, seed=s.seed, log=log)
        curve = sorted_mean_probabilities(model, x)
        curves[label] = curve.tolist()
        acc = {r["attack"]: r["accuracy"] for r in results}
        rows.append(dict(model=label, clean=acc["clean"], pgd20=acc["pgd20"], aa=acc[s.autoattack],
                         top1_prob=float(curve[0]), tail_mass=tail_mass(curve), checkpoint=checkpoints[key],
                         results=results))

    summary = dict(settings=dataclasses.asdict(s), n_eval=n, n_autoattack=n_aa,
                   threat=dict(norm=threat.norm, eps=threat.eps, pgd_alpha=threat.alpha),
                   models=rows, sorted_mean_probabilities=curves,
                   seconds=dict(train=round(train_seconds, 1), total=round(time.perf_counter() - start, 1)))
    table = markdown_table(rows, [("model", "model"), ("clean", f"clean (n={n})"), ("pgd20", f"PGD-20 (n={n})"),
                                  ("aa", f"{s.autoattack} (n={n_aa})"), ("tail_mass", "mass outside top-2")])
    notes = (f"Held-out EmbeddedMNIST digits, Linf eps={s.eps}; PGD-20 step {s.eval_alpha}, random start; "
             f"{describe_attack(parse_attack(s.autoattack), threat)}. 'mass outside top-2': mean softmax "
             "probability outside the two largest classes (lower = sparser). Accuracies in %.\n")
    os.makedirs(work_dir, exist_ok=True)
    plot_sparsity(curves, os.path.join(work_dir, "sparsity.png"))
    atomic_write_text(json.dumps(summary, indent=2), os.path.join(work_dir, "results.json"))
    atomic_write_text("# NAT demo on embedded MNIST\n\n" + table + "\n" + notes, os.path.join(work_dir, "results.md"))
    log("\n" + table + notes + f"Wrote {work_dir}/results.json, results.md, sparsity.png "
        f"({summary['seconds']['total']:.0f} s)")
    return summary
