"""Evaluate a detector clean and under attack: the row of the NAT paper's Table 13.

    python tools/test.py CONFIG CHECKPOINT --attack {none,cls,loc,dag,rap,all} [--eps 8]
        [--alpha 2] [--steps 10] [--dag-steps 150] [--work-dir DIR] [--out RESULTS.json]
        [--device cpu|cuda|cuda:N] [--cfg-options k=v ...] [--launcher ...]

mAP is mmdet's VOCMetric of the config (11-point mAP@0.5 for VOC07 test). Results are printed
and written atomically as JSON and Markdown (default: WORK_DIR/attack_results.{json,md}).
"""
import argparse
import json
import os
import sys
import warnings

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# torch >= 2.6 loads weights_only by default; mmengine's checkpoints hold numpy scalars.
os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
# mmengine imports pkg_resources (setuptools < 81 is pinned for it); its deprecation notice is noise.
warnings.filterwarnings("ignore", message="pkg_resources is deprecated")

from nat_tasks.core.checkpoint import atomic_write_text  # noqa: E402
from nat_tasks.core.errors import NatError, cli_entry  # noqa: E402
from nat_tasks.det.cli import add_runner_args, load_config, parse_runner_args, select_device  # noqa: E402

ATTACK_CHOICES = ("none", "cls", "loc", "dag", "rap")
COLUMNS = {"none": "clean", "cls": "A_cls", "loc": "A_loc", "dag": "DAG", "rap": "RAP"}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Evaluate a detector clean and under attacks")
    parser.add_argument("config")
    parser.add_argument("checkpoint")
    parser.add_argument("--attack", choices=ATTACK_CHOICES + ("all",), default="all")
    parser.add_argument("--eps", type=float, default=8.0, help="Linf budget on the 0..255 scale")
    parser.add_argument("--alpha", type=float, default=2.0, help="PGD step (cls, loc, rap)")
    parser.add_argument("--steps", type=int, default=10, help="PGD steps (cls, loc, rap)")
    parser.add_argument("--dag-steps", type=int, default=150, help="DAG iterations (Xie et al.: 150)")
    parser.add_argument("--dag-gamma", type=float, default=0.5, help="DAG step size")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work-dir")
    parser.add_argument("--out", help="results JSON path (a .md table is written next to it)")
    add_runner_args(parser)
    return parse_runner_args(parser, argv)


def _map_of(metrics, attack):
    keys = [k for k in metrics if k.startswith(f"{attack}/") and k.endswith("/mAP")]
    return float(metrics[keys[0]]) * 100 if keys else None


def summarise(metrics, attacks, config, checkpoint, attack_cfg):
    rows = {attack: {"mAP": _map_of(metrics, attack),
                     "images_per_s": float(metrics[f"{attack}/images_per_s"])} for attack in attacks}
    return {"config": config, "checkpoint": checkpoint, "attack_cfg": attack_cfg, "results": rows,
            "metrics": {k: float(v) for k, v in metrics.items()}}


def markdown(summary):
    attacks = list(summary["results"])
    header = "| model | " + " | ".join(COLUMNS[a] for a in attacks) + " |"
    rule = "|---|" + "---|" * len(attacks)
    name = os.path.splitext(os.path.basename(summary["config"]))[0]
    maps = " | ".join(f"{summary['results'][a]['mAP']:.1f}" for a in attacks)
    speed = " | ".join(f"{summary['results'][a]['images_per_s']:.2f}" for a in attacks)
    budget = summary["attack_cfg"]
    return (f"mAP@0.5 (VOCMetric, %), Linf eps {budget['eps']:g} on 0..255\n\n{header}\n{rule}\n"
            f"| {name} | {maps} |\n| images/s | {speed} |\n")


@cli_entry
def main(argv=None):
    args = parse_args(argv)
    select_device(args.device)

    from mmengine.runner import Runner

    from nat_tasks.det.voc_checks import check_voc_config

    if not os.path.isfile(args.checkpoint):
        raise NatError(f"checkpoint not found: {args.checkpoint}")
    cfg = load_config(args.config, args.cfg_options, args.work_dir)
    cfg.launcher = args.launcher
    cfg.load_from = args.checkpoint
    # Evaluation needs neither the training attack nor the NAT adversary.
    cfg.model.pop("mtd", None)
    cfg.model.pop("nasty", None)
    attacks = list(ATTACK_CHOICES) if args.attack == "all" else [args.attack]
    attack_cfg = dict(eps=args.eps, alpha=args.alpha, steps=args.steps, dag_steps=args.dag_steps,
                      dag_gamma=args.dag_gamma, seed=args.seed)
    cfg.test_cfg = dict(type="AdversarialTestLoop", attacks=attacks, attack_cfg=attack_cfg)
    check_voc_config(cfg, splits=("test_dataloader",))

    runner = Runner.from_cfg(cfg)
    metrics = runner.test()
    summary = summarise(metrics, attacks, args.config, args.checkpoint, attack_cfg)
    out = args.out or os.path.join(cfg.work_dir, "attack_results.json")
    table = markdown(summary)
    atomic_write_text(json.dumps(summary, indent=2) + "\n", out)
    atomic_write_text(table, os.path.splitext(out)[0] + ".md")
    print(table)
    print(f"results written to {out}")


if __name__ == "__main__":
    main()
