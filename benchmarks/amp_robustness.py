"""Robust accuracy of mixed-precision (``--amp``) training against float32, on the MNIST demo.

Per seed: the demo's vanilla adversary (float32), then each method (PGD-AT and NAT by default)
trained twice with the same seed, schedule, data order and adversary, once in float32 and once
with ``--amp`` (the trainer of ``tools/train_cls.py``: ``load_cls_config`` + ``enable_amp`` +
``train``, with the demo's settings, ``nat_tasks/cls/demos/demo.py``'s ``train_options``). Every model
is evaluated in float32 by the evaluation of ``tools/eval_cls.py`` (``cls.evaluation.evaluate``)
on the demo's held-out digits: clean and PGD-20 on ``--n-eval``, AutoAttack (``--autoattack``,
standard by default) on ``--n-autoattack`` of them. The table gives each model's mean over seeds
and the paired difference ``--amp`` minus float32 (mean ± std over seeds, 95 % t interval); the
target is |mean AutoAttack difference| <= 1 point. Finished runs and their evaluations in the
work dir are reused, so seeds can run as separate processes (``--demo-options seed=K`` with
``--seeds 1``) and a last call with all the seeds only assembles the table.

    python benchmarks/amp_robustness.py [--seeds 3] [--methods pgdat nat] [--n-eval 500]
        [--n-autoattack 100] [--autoattack aa] [--amp-dtype bfloat16] [--device cpu] [--threads N]
        [--work-dir work_dirs/amp_robustness] [--demo-options at_epochs=2 ...]
"""
import argparse
import json
import os
import sys
import time

import torch
from mmengine.config import DictAction

from bench_common import cpu_info  # benchmarks/ is the script folder: on sys.path
from nat_tasks.cls import load_cls_config, train
from nat_tasks.cls.models.architectures import build_classifier
from nat_tasks.cls.evaluation.attacks import REGISTRY, ThreatModel
from nat_tasks.cls.data.data import EmbeddedMNIST
from nat_tasks.cls.demos.demo import CONFIG_DIR, MODELS, DemoSettings, train_options
from nat_tasks.cls.evaluation.evaluation import evaluate
from nat_tasks.cls.data.subsets import subset_indices
from nat_tasks.cls.training.train import last_checkpoint
from nat_tasks.cls.models.weights import load_classifier_weights
from nat_tasks.core.checkpoint import atomic_write_text
from nat_tasks.core.stats import format_interval, seed_summary
from nat_tasks.runtime import default_device, markdown_table, select_runner_device, tool_main, write_results
from nat_tasks.runtime.amp import AMP_DTYPES, enable_amp

CONFIGS = {key: config for key, _, config, _ in MODELS}
LABELS = {key: label for key, label, _, _ in MODELS}
METRICS = ("clean", "pgd20", "aa")
PRECISIONS = ("fp32", "amp")


def _train(key, s, seed, work_dir, adversary=None, amp_dtype=None):
    """The last checkpoint of the demo's model ``key`` (trained now unless a finished run exists)."""
    options = train_options(key, s, seed, adversary)
    cfg = load_cls_config(os.path.join(CONFIG_DIR, CONFIGS[key]), work_dir=work_dir, cfg_options=options)
    done = os.path.join(work_dir, f"epoch_{cfg.train_cfg.max_epochs}.pth")
    if os.path.isfile(done):
        return done
    if amp_dtype is not None:
        enable_amp(cfg, amp_dtype)
    return last_checkpoint(train(cfg))


def _evaluate(checkpoint, x, y, aa_index, threat, s, device, log):
    """Clean, PGD-20 and AutoAttack flags of ``checkpoint`` in float32, cached next to it (per settings)."""
    key = dict(n_eval=len(x), n_autoattack=len(aa_index), autoattack=s.autoattack, eps=s.eps)
    cache = os.path.join(os.path.dirname(checkpoint), "amp_robustness_eval.json")
    if os.path.isfile(cache):
        with open(cache) as f:
            cached = json.load(f)
        if cached["key"] == key and cached["checkpoint"] == checkpoint:
            return cached["result"]
    info = dict(num_classes=EmbeddedMNIST.num_classes, in_channels=EmbeddedMNIST.in_channels,
                image_size=EmbeddedMNIST.image_size, mean=EmbeddedMNIST.mean, std=EmbeddedMNIST.std)
    model = load_classifier_weights(build_classifier("small_cnn", **info), checkpoint).to(device).eval()
    log(f"== evaluating {checkpoint} (float32)")
    # attack seed 0 (eval_cls.py's default) for every model, whichever process evaluates it
    results = evaluate(model, x, y, ["clean", "pgd20"], threat, seed=0, log=log, progress=False)
    results += evaluate(model, x[aa_index], y[aa_index], [s.autoattack], threat, seed=0, log=log, progress=False)
    result = dict(checkpoint=checkpoint, flags=dict(zip(METRICS, (r["flags"] for r in results))),
                  accuracy=dict(zip(METRICS, (r["accuracy"] for r in results))),
                  settings={r["attack"]: r["settings"] for r in results})
    atomic_write_text(json.dumps(dict(key=key, checkpoint=checkpoint, result=result)), cache)
    return result


def _cell(values):
    summary = seed_summary(values)
    std = "" if summary["std"] is None else f" ± {summary['std']:.1f}"
    interval = format_interval(summary["mean"], summary["low"], summary["high"])
    point, _, rest = interval.partition(" ")
    return f"{point}{std} {rest}".strip(), summary


def run(args, log=print):
    s = DemoSettings.from_options(dict(args.demo_options or {}, n_eval=args.n_eval,
                                       n_autoattack=args.n_autoattack, autoattack=args.autoattack))
    if args.threads:
        torch.set_num_threads(args.threads)
    select_runner_device(args.device)
    device = default_device()
    test = EmbeddedMNIST(split="test", test_size=5000 - s.train_digits)
    index = subset_indices(len(test), s.n_eval)  # the demo's held-out subset
    x = torch.stack([test[i]["inputs"] for i in index])
    y = torch.tensor([test[i]["labels"] for i in index])
    aa_index = subset_indices(len(index), min(s.n_autoattack, len(index)))
    threat = ThreatModel(eps=s.eps, alpha=s.eval_alpha)
    runs, start = [], time.perf_counter()
    for seed in range(s.seed, s.seed + args.seeds):
        root = os.path.join(args.work_dir, f"seed_{seed}")
        adversary = _train("vanilla", s, seed, os.path.join(root, "vanilla"))
        seed_runs = {}
        for key in args.methods:
            for precision in PRECISIONS:
                started = time.perf_counter()
                checkpoint = _train(key, s, seed, os.path.join(root, f"{key}_{precision}"), adversary,
                                    args.amp_dtype if precision == "amp" else None)
                trained = time.perf_counter() - started
                seed_runs[f"{key}_{precision}"] = dict(_evaluate(checkpoint, x, y, aa_index, threat, s, device, log),
                                                       train_seconds=round(trained, 1))
        runs.append(seed_runs)
        log(f"seed {seed}: " + ", ".join(f"{k} {v['accuracy']}" for k, v in seed_runs.items()))

    rows, differences = [], []
    for key in args.methods:
        for precision in PRECISIONS:
            name = f"{key}_{precision}"
            cells = {m: _cell([r[name]["accuracy"][m] for r in runs]) for m in METRICS}
            rows.append(dict(model=f"{LABELS[key]}, {'--amp ' + args.amp_dtype if precision == 'amp' else 'float32'}",
                             **{m: c[0] for m, c in cells.items()}, _summary={m: c[1] for m, c in cells.items()}))
        cells = {m: _cell([r[f"{key}_amp"]["accuracy"][m] - r[f"{key}_fp32"]["accuracy"][m] for r in runs])
                 for m in METRICS}
        differences.append(dict(model=f"{LABELS[key]}: --amp − float32", **{m: c[0] for m, c in cells.items()},
                                _summary={m: c[1] for m, c in cells.items()},
                                aa_within_1_point=abs(cells["aa"][1]["mean"]) <= 1.0))
    n, n_aa = len(index), len(aa_index)
    columns = [("model", "model"), ("clean", f"clean (n={n})"), ("pgd20", f"PGD-20 (n={n})"),
               ("aa", f"{REGISTRY.build(s.autoattack, threat=threat).column} (n={n_aa})")]
    table = (markdown_table(rows, columns) + "\n"
             + markdown_table([dict(d, within="yes" if d["aa_within_1_point"] else "no") for d in differences],
                              [*columns, ("within", "|AA diff| <= 1")]))
    notes = (f"Mean ± std over {args.seeds} seed(s) [95 % t interval]; differences are paired per seed (same "
             f"seed, data order and adversary). Held-out EmbeddedMNIST digits, Linf eps={s.eps}; evaluation in "
             f"float32. Training: the demo's schedule (at_epochs={s.at_epochs}, train_steps={s.train_steps}).\n")
    report = dict(settings=vars(s), seeds=args.seeds, methods=args.methods, amp_dtype=args.amp_dtype,
                  cpu=cpu_info(), threads=torch.get_num_threads(), n_eval=n, n_autoattack=n_aa,
                  rows=rows, differences=differences, runs=runs,
                  seconds=round(time.perf_counter() - start, 1))
    os.makedirs(args.work_dir, exist_ok=True)
    write_results(os.path.join(args.work_dir, "results"), report, "# --amp vs float32 on the MNIST demo\n\n"
                  + table + "\n" + notes)
    log("\n" + table + "\n" + notes + f"Wrote {args.work_dir}/results.json and results.md")
    return report


@tool_main
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--methods", nargs="+", choices=[k for k in CONFIGS if k != "vanilla"],
                        default=["pgdat", "nat"])
    parser.add_argument("--n-eval", type=int, default=DemoSettings.n_eval)
    parser.add_argument("--n-autoattack", type=int, default=DemoSettings.n_autoattack)
    parser.add_argument("--autoattack", default=DemoSettings.autoattack, help="aa or apgd-ce-<k>")
    parser.add_argument("--amp-dtype", choices=AMP_DTYPES, default="bfloat16")
    parser.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda if available, else cpu)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's; 1 on a shared, loaded CPU)")
    parser.add_argument("--work-dir", default="work_dirs/amp_robustness")
    parser.add_argument("--demo-options", nargs="+", action=DictAction, help="DemoSettings knobs (nat_tasks/cls/demos/demo.py)")
    run(parser.parse_args(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    main()
