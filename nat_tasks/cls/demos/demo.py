"""The embedded demo: an honest ablation of NAT on real MNIST digits (3500 to train, 500 to validate,
1000 held out for testing).

``python tools/train_cls.py`` (no config) runs it on CPU in minutes, with nothing to download:
1. trains the adversary (vanilla small CNN), then three adversarially trained models with the same
   seed and schedule, each through the real trainer (``configs/cls/mnist_small_cnn_*.py`` on
   mmengine's Runner):
   - PGD-AT: CE on X' (the standard baseline);
   - AT on X ∪ X': CE on the clean and the adversarial batch, no nasty term (NAT with lambda = 0);
   - NAT: the same batch plus the nasty term (eq. 5).
   NAT differs from PGD-AT in two ways (the batch and the nasty term); the middle row separates
   them: NAT vs "AT on X ∪ X'" is the effect of the nasty term alone.
2. evaluates the last checkpoints on held-out digits (Linf eps 0.3): clean and PGD-20 on ``n_eval``
   of them; on ``n_autoattack`` of those, the standard AutoAttack (``--demo-options
   autoattack=apgd-ce-100`` runs only its first attack, minutes faster on a CPU);
3. repeats 1-2 for ``seeds`` seeds (adversary included) and reports every number with a 95 %
   interval: with one seed a bootstrap over the test digits, with several the mean ± std and a
   Student-t interval over seeds; NAT's differences to the two baselines are *paired* (same digits,
   or same seed), which is what tells a real difference from noise;
4. writes ``results.json``, ``results.md`` and ``sparsity.png`` (sorted mean softmax
   probabilities, the paper's Fig. 3, averaged over seeds) to the work dir and prints the tables;
5. then draws the paper's analysis figures (Figs. 3-8, ``nat_tasks.cls.analysis``) for the first
   seed's four models on ``analysis_examples`` held-out digits (UMAP on at most 500 of them) into
   ``<work_dir>/analysis/`` (``analysis.md``: one scalar per figure and model). It runs after every
   result above is computed and restores the global random state, so the tables do not depend on
   it; ``analysis_examples=0`` skips it.
No setting of the demo was chosen by looking at its test digits. Budget knobs (``DemoSettings``)
are set with ``--demo-options key=value``.
"""
import dataclasses
import os
import time

import numpy as np
import torch

from nat_tasks.core.errors import NatError
from nat_tasks.core.stats import bootstrap_interval, format_interval, seed_summary
from nat_tasks.runtime import default_device, markdown_table, select_runner_device, write_results
from nat_tasks.runtime.checkout import REPO_ROOT

from nat_tasks.cls.analysis import analyze_models, plot_sparsity, sorted_mean_probabilities
from nat_tasks.cls.models.architectures import build_classifier
from nat_tasks.cls.evaluation.attacks import REGISTRY, ThreatModel
from nat_tasks.cls.evaluation.attack_cache import evaluate_each
from nat_tasks.cls.data.data import EmbeddedMNIST
from nat_tasks.cls.demos.demo_report import attack_states, demo_report
from nat_tasks.cls.evaluation.evaluation import evaluate
from nat_tasks.cls.data.subsets import subset_indices
from nat_tasks.cls.training.nasty_section import nasty_spec
from nat_tasks.cls.training.train import last_checkpoint, load_cls_config, train
from nat_tasks.cls.models.weights import load_classifier_weights

CONFIG_DIR = os.path.join(REPO_ROOT, "configs", "cls")
# (key, row label, config, extra config options)
MODELS = (("vanilla", "VT (adversary)", "mnist_small_cnn_vanilla.py", {}),
          ("pgdat", "PGD-AT", "mnist_small_cnn_pgdat.py", {}),
          ("at_union", "AT on X ∪ X' (λ=0)", "mnist_small_cnn_pgdat.py", {"model.method.include_clean": True}),
          ("nat", "NAT", "mnist_small_cnn_nat.py", {}))
METRICS = ("clean", "pgd20", "aa")  # "aa": the demo's AutoAttack (``DemoSettings.autoattack``)
COMPARISONS = (("nat", "at_union"), ("nat", "pgdat"))  # NAT minus each baseline, paired


class DemoOptions:
    """A demo's knobs (a dataclass's fields) from ``--demo-options k=v``: unknown keys and values of
    the wrong type are one line; ``check`` adds the demo's own rules."""

    @classmethod
    def from_options(cls, options):
        types = {f.name: f.type for f in dataclasses.fields(cls)}
        unknown = sorted(set(options or {}) - set(types))
        if unknown:
            raise NatError(f"unknown demo option(s) {unknown}; expected some of {sorted(types)}")
        try:
            settings = cls(**{k: types[k](v) for k, v in (options or {}).items()})
        except ValueError as err:
            raise NatError(f"bad demo option: {err}") from None
        settings.check()
        return settings

    def check(self):
        pass


@dataclasses.dataclass
class DemoSettings(DemoOptions):
    vanilla_epochs: int = 1      # the adversary: ~90% clean accuracy after one epoch
    at_epochs: int = 2           # PGD-AT and NAT, same seed and schedule
    warmup_epochs: int = 1       # linear eps ramp 0 -> 0.3 over the first epoch (EpsWarmupHook)
    train_steps: int = 2         # PGD steps in training (random start)
    train_alpha: float = 0.2     # PGD step in training (2 x 0.2 reaches the 0.3 ball's far side)
    nat_weight: float = None     # NAT's nasty weight and tau; None: mnist_small_cnn_nat.py's
    nat_tau: float = None
    eps: float = 0.3             # Linf budget of training and evaluation
    eval_alpha: float = 0.03     # PGD-20 step in evaluation
    train_digits: int = 4000     # of the 5000; the rest is the test split (stratified, fixed)
    val_digits: int = 500        # of the train_digits, held out for per-epoch validation
    n_eval: int = 500            # held-out digits (a fixed random subset) for clean / PGD-20
    n_val_attack: int = 100      # held-out digits attacked (PGD-10) by each epoch's validation
    autoattack: str = "aa"       # standard AutoAttack; "apgd-ce-100" = its first attack only
    n_autoattack: int = 100      # held-out digits (a subset of the n_eval) for AutoAttack
    seed: int = 0                # the first seed; run k uses seed + k
    seeds: int = 1               # independent runs (adversary included): mean ± std over seeds
    analysis_examples: int = 200  # held-out digits for the analysis figures of the first seed (0: none)
    analysis_umap_points: int = 500  # of those, at most this many in the UMAP figure
    report: int = 1              # the robustness report page of the first seed's models (0: none)
    report_square_queries: int = 1000  # Square's budget in the report's checklist (its slowest attack on a CPU)

    def check(self):
        if self.analysis_examples < 0 or self.analysis_umap_points < 4:
            raise NatError("bad demo option: analysis_examples >= 0 and analysis_umap_points >= 4 are needed")
        if self.seeds < 1:
            raise NatError(f"bad demo option: seeds={self.seeds} (at least 1)")


def train_options(key, s, seed, adversary_checkpoint=None):
    """The ``--cfg-options`` of the demo's model ``key`` (a ``MODELS`` key) with settings ``s``
    (``DemoSettings``) and ``seed``; NAT's adversary is ``adversary_checkpoint``. Also used by
    ``benchmarks/amp_robustness.py``, which trains the demo's models in mixed precision."""
    extra = next(extra for k, _, _, extra in MODELS if k == key)
    epochs = s.vanilla_epochs if key == "vanilla" else s.at_epochs
    split = dict(test_size=5000 - s.train_digits, val_size=s.val_digits)
    options = {"train_cfg.max_epochs": epochs, "randomness.seed": seed,
               "train_dataloader.dataset": split, "val_dataloader.dataset": split,
               "model.val_attack": dict(n_examples=s.n_val_attack, steps=10, alpha=0.05),
               "param_scheduler": [dict(type="MultiStepLR", by_epoch=True, milestones=[max(1, int(0.8 * epochs))],
                                        gamma=0.1)], **extra}
    if key != "vanilla":
        options.update({"model.method.eps": s.eps, "model.method.steps": s.train_steps,
                        "model.method.alpha": s.train_alpha,
                        "custom_hooks": [dict(type="EpochSeedHook"),
                                         dict(type="EpsWarmupHook", epochs=s.warmup_epochs)]})
    if key == "nat":
        overrides = {"weight": s.nat_weight, "tau": s.nat_tau, "adversary.checkpoint": adversary_checkpoint}
        options.update({f"model.nasty.{k}": v for k, v in overrides.items() if v is not None})
    return options


def _train_all(work_dir, s, seed, log):
    """Train the four models through the real configs; returns {key: last checkpoint path} and
    the NAT run's ``NastySpec``."""
    checkpoints = {}
    for number, (key, label, config, _) in enumerate(MODELS, 1):
        log(f"== training {label} ({number}/{len(MODELS)})")
        options = train_options(key, s, seed, checkpoints.get("vanilla"))
        cfg = load_cls_config(os.path.join(CONFIG_DIR, config), work_dir=os.path.join(work_dir, f"seed_{seed}", key),
                              cfg_options=options)
        if key == "nat":
            nasty = nasty_spec(cfg.model)
        checkpoints[key] = last_checkpoint(train(cfg))
    return checkpoints, nasty


def _evaluate_seed(checkpoints, x, y, aa_index, threat, s, device, log):
    """{key: dict(flags per metric, curve)} for one seed's models."""
    info = dict(num_classes=EmbeddedMNIST.num_classes, in_channels=EmbeddedMNIST.in_channels,
                image_size=EmbeddedMNIST.image_size, mean=EmbeddedMNIST.mean, std=EmbeddedMNIST.std)
    runs = {}
    for key, label, _, _ in MODELS:
        model = load_classifier_weights(build_classifier("small_cnn", **info), checkpoints[key]).to(device).eval()
        log(f"== evaluating {label} ({checkpoints[key]})")
        results = evaluate(model, x, y, ["clean", "pgd20"], threat, seed=s.seed, log=log)
        results += evaluate_each(model, x[aa_index], y[aa_index], [s.autoattack], threat,  # kept for the report
                                 attack_states(checkpoints[key]), checkpoint=checkpoints[key], seed=s.seed, log=log)
        flags = dict(zip(METRICS, (r["flags"] for r in results)))
        runs[key] = dict(checkpoint=checkpoints[key], flags=flags,
                         curve=sorted_mean_probabilities(model, x).tolist(),
                         settings={r["attack"]: r["settings"] for r in results})
    return runs


def estimate(per_seed):
    """A row's number with its 95 % interval: per-example values of one seed, or one value per seed.

    ``per_seed``: a list (one entry per seed) of arrays of per-example values (flags in {0, 1},
    paired differences in {-1, 0, 1}); returns percentages.
    """
    if len(per_seed) == 1:
        values = np.asarray(per_seed[0], dtype=float)
        low, high = bootstrap_interval(values)
        return dict(value=100 * values.mean(), low=100 * low, high=100 * high, std=None, over="examples")
    summary = seed_summary([100 * np.mean(v) for v in per_seed])
    return dict(value=summary["mean"], low=summary["low"], high=summary["high"], std=summary["std"], over="seeds")


def _summarise(runs_by_seed):
    """Per model and metric an estimate; per comparison and metric the paired difference."""
    rows = {}
    for key, label, _, _ in MODELS:
        rows[key] = dict(model=label, **{metric: estimate([runs[key]["flags"][metric] for runs in runs_by_seed])
                                         for metric in METRICS})
        curves = np.mean([runs[key]["curve"] for runs in runs_by_seed], axis=0)
        rows[key]["tail_mass"] = float(curves[2:].sum())
        rows[key]["curve"] = curves.tolist()
    differences = {}
    for a, b in COMPARISONS:
        differences[f"{a}-{b}"] = {
            metric: estimate([np.subtract(runs[a]["flags"][metric], runs[b]["flags"][metric], dtype=float)
                               for runs in runs_by_seed])
            for metric in METRICS}
    return rows, differences


def cell(row):
    """``57.2 [54.1, 60.3]`` (one seed) or ``57.2 ± 1.3 [54.0, 60.4]`` (mean ± std over seeds)."""
    interval = format_interval(row["value"], row["low"], row["high"])
    if row["std"] is None:
        return interval
    point, rest = interval.split(" ", 1)
    return f"{point} ± {row['std']:.1f} {rest}"


def _tables(rows, differences, s, threat, n, n_aa):
    attacks = dict(clean="clean", pgd20="pgd20", aa=s.autoattack)
    sizes = dict(clean=n, pgd20=n, aa=n_aa)
    headers = [(m, f"{REGISTRY.build(attacks[m], threat=threat).column} (n={sizes[m]})") for m in METRICS]
    models = markdown_table([dict(model=row["model"], tail_mass=f"{row['tail_mass']:.3f}",
                                  **{m: cell(row[m]) for m in METRICS}) for row in rows.values()],
                            [("model", "model"), *headers, ("tail_mass", "mass outside top-2")])
    paired = []
    for name, estimates in differences.items():
        a, b = name.split("-")
        paired.append(dict(label=f"{rows[a]['model']} − {rows[b]['model']}",
                           **{m: cell(estimates[m]) for m in METRICS}))
    return models + "\n" + markdown_table(paired, [("label", "paired difference (points)"), *headers])


def held_out_digits(train_digits, n):
    """``n`` digits of the embedded MNIST test split left by ``train_digits`` (a fixed random subset:
    the split is sorted by class), as ``(images, labels)``."""
    test = EmbeddedMNIST(split="test", test_size=5000 - train_digits)
    index = subset_indices(len(test), n)
    return torch.stack([test[i]["inputs"] for i in index]), torch.tensor([test[i]["labels"] for i in index])


def run_demo(work_dir="work_dirs/demo", device=None, options=None, log=print):
    """Run the whole demo; returns the results dict also written to ``<work_dir>/results.json``."""
    s = DemoSettings.from_options(options)
    select_runner_device(device)
    start = time.perf_counter()
    x, y = held_out_digits(s.train_digits, s.n_eval)
    n, n_aa = len(y), min(s.n_autoattack, len(y))
    aa_index = subset_indices(n, n_aa)
    threat = ThreatModel(eps=s.eps, alpha=s.eval_alpha)
    device_name = None
    runs_by_seed = []
    for seed in range(s.seed, s.seed + s.seeds):
        log(f"==== seed {seed}")
        checkpoints, nasty = _train_all(work_dir, s, seed, log)
        device_name = device_name or default_device()  # after select_runner_device: 'cpu' when it hid GPUs
        runs_by_seed.append(_evaluate_seed(checkpoints, x, y, aa_index, threat, s, device_name, log))
    rows, differences = _summarise(runs_by_seed)

    summary = dict(settings=dataclasses.asdict(s), n_eval=n, n_autoattack=n_aa,
                   threat=dict(norm=threat.norm, eps=threat.eps, pgd_alpha=threat.alpha),
                   interval="95 % " + ("bootstrap over the test digits" if s.seeds == 1
                                       else f"Student-t over {s.seeds} seeds (mean ± std [interval])"),
                   models=list(rows.values()), differences=differences,
                   runs=[{key: dict(checkpoint=r["checkpoint"], settings=r["settings"],
                                    accuracy={m: 100 * float(np.mean(f)) for m, f in r["flags"].items()},
                                    flags=r["flags"])
                          for key, r in runs.items()} for runs in runs_by_seed],
                   seconds=dict(total=round(time.perf_counter() - start, 1)))
    table = _tables(rows, differences, s, threat, n, n_aa)
    notes = (f"Held-out EmbeddedMNIST digits, Linf eps={s.eps}; PGD-20 step {s.eval_alpha}, random start; "
             f"{REGISTRY.build(s.autoattack, threat=threat).describe()}. An example is robust only if it is "
             f"also correct clean. Accuracies in %, {summary['interval']}; differences are paired (the "
             "same digits and seed). 'mass outside top-2': mean softmax probability outside the two "
             f"largest classes (lower = sparser). NAT: w={nasty.weight}, tau={nasty.tau} "
             f"(tau^2 {'on' if nasty.scale_by_tau2 else 'off'}).\n")
    os.makedirs(work_dir, exist_ok=True)
    plot_sparsity({row["model"]: row["curve"] for row in rows.values()}, os.path.join(work_dir, "sparsity.png"))
    write_results(os.path.join(work_dir, "results"), summary, "# NAT demo on embedded MNIST\n\n" + table + "\n" + notes)
    log("\n" + table + "\n" + notes + f"Wrote {work_dir}/results.json, results.md, sparsity.png "
        f"({summary['seconds']['total']:.0f} s)")
    if s.analysis_examples:
        _analyse(runs_by_seed[0], s, device_name, os.path.join(work_dir, "analysis"), log)
    if s.report:
        log(f"Robustness report of the seed-{s.seed} models: {demo_report(work_dir, runs_by_seed[0], s, device_name)}")
    return summary


def _analyse(runs, s, device, out, log):
    """The analysis figures (``nat_tasks.cls.analysis``) of one seed's models on held-out digits."""
    start = time.perf_counter()
    x, y = held_out_digits(s.train_digits, s.analysis_examples)
    info = dict(num_classes=EmbeddedMNIST.num_classes, in_channels=EmbeddedMNIST.in_channels,
                image_size=EmbeddedMNIST.image_size, mean=EmbeddedMNIST.mean, std=EmbeddedMNIST.std)
    models = {label: load_classifier_weights(build_classifier("small_cnn", **info), runs[key]["checkpoint"])
              for key, label, _, _ in MODELS}
    attack = dict(eps=s.eps, alpha=s.eval_alpha, steps=20)
    _, table = analyze_models(models, x, y, out, attack=attack, seed=s.seed, device=device,
                              umap_points=s.analysis_umap_points, log=log,
                              title=f"Analysis figures of the demo's seed-{s.seed} models ({len(x)} held-out digits)")
    log(f"\n{table}\nWrote the analysis figures, analysis.json and analysis.md to {out} "
        f"({time.perf_counter() - start:.1f} s)")
