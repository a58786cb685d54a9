"""Evaluate a detector clean and under attack: the row of the NAT paper's Table 13.

    python tools/test.py CONFIG CHECKPOINT --attack {none,cls,loc,dag,rap,all} [--eps 8]
        [--alpha 2] [--steps 10] [--dag-steps 150] [--ci N] [--checklist] [--work-dir DIR]
        [--out RESULTS.json] [--device cpu|cuda|cuda:N] [--cfg-options k=v ...] [--launcher ...]

The attacks, their columns (clean, A_cls, A_loc, DAG, RAP) and the choices of ``--attack`` come
from the detection attack registry (``nat_tasks/det/attacks.py``). mAP is mmdet's VOCMetric of the
config (11-point mAP@0.5 for VOC07 test). ``--ci N`` adds to each mAP its 95 % interval from N
bootstrap resamples of the test images (scored by the same metric). ``--checklist`` also runs A_cls
at 0.5x, 2x, 4x eps and at eps 255 and prints the pass/fail table of the gradient-masking checks
(``nat_tasks/det/checklist.py``). Results are printed and written atomically as JSON and Markdown
(default: WORK_DIR/attack_results.{json,md}).
"""
import os

# Idle OpenMP threads sleep instead of spinning (set before torch loads its OpenMP runtime; the
# environment overrides it). Spinning threads on a shared CPU slowed an attack step up to 5x (one
# thread of two waiting for the other to be scheduled); sleeping costs a wake-up per parallel op.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from nat_tasks.runtime.tool import require_stage  # noqa: E402

require_stage("det")  # one line naming the set-up command, before mmdet is imported

from nat_tasks.core.errors import NatError  # noqa: E402
from nat_tasks.core.sanity import Check, checks_markdown  # noqa: E402
from nat_tasks.det.attacks import CLEAN, columns, default_attacks, kinds  # noqa: E402
from nat_tasks.det.report import ABOVE_CLEAN, ABOVE_CLEAN_NOTE, WORST_COLUMN, cell, worst_case_row  # noqa: E402
from nat_tasks.det.cli import add_runner_args, parse_runner_args  # noqa: E402
from nat_tasks.runtime import console, load_config, select_runner_device, tool_main, tool_parser, write_results  # noqa: E402,E501

ATTACK_CHOICES = (CLEAN,) + tuple(kinds())
COLUMNS = columns()


DESCRIPTION = """\
Evaluate a detector clean and under attacks (A_cls, A_loc, DAG, RAP: the row of the paper's Table 13),
mAP@0.5 by the config's VOCMetric, optionally with 95 % bootstrap intervals and the gradient-masking
checklist. Data: the config's test split (Pascal VOC: data/VOCdevkit/VOC2007 test). Details:
docs/user_guide/detection.md. Writes WORK_DIR/attack_results.json and .md (or --out)."""

EXAMPLES = """\
examples:
  python tools/test.py configs/det/voc_ssd300_mtd_nat.py CHECKPOINT --attack all --ci 200
  python tools/test.py configs/det/demo_mtd_nat.py CHECKPOINT --attack cls --checklist --device cpu"""


def build_parser():
    parser = tool_parser("test", DESCRIPTION, EXAMPLES)
    parser.add_argument("config", help="the detector's config (mmdet format)")
    parser.add_argument("checkpoint", help="its checkpoint (.pth)")
    parser.add_argument("--attack", choices=ATTACK_CHOICES + ("all",), default="all",
                        help="one pass, or all: " + ", ".join(COLUMNS.values()))
    parser.add_argument("--eps", type=float, default=8.0, help="Linf budget on the 0..255 scale")
    parser.add_argument("--alpha", type=float, default=2.0, help="PGD step (cls, loc, rap)")
    parser.add_argument("--steps", type=int, default=10, help="PGD steps (cls, loc, rap)")
    parser.add_argument("--dag-steps", type=int, default=150, help="DAG iterations (Xie et al.: 150)")
    parser.add_argument("--dag-gamma", type=float, default=0.5, help="DAG step size")
    parser.add_argument("--seed", type=int, default=0, help="seed of the attacks' random draws")
    parser.add_argument("--ci", type=int, default=0, metavar="N",
                        help="95%% bootstrap interval of each mAP from N resamples of the test images "
                             "(0: none; e.g. 200)")
    parser.add_argument("--checklist", action="store_true",
                        help="gradient-masking checks: A_cls at 0.5x/1x/2x/4x eps, at eps 255, with 2x/4x "
                             "the steps, and transferred from --transfer-from")
    parser.add_argument("--restarts", type=int, default=1, help="random starts of each PGD attack")
    parser.add_argument("--transfer-from", nargs=2, metavar=("CONFIG", "CHECKPOINT"),
                        help="a surrogate detector for the transfer-* attacks (checklist: transfer-cls)")
    parser.add_argument("--work-dir", help="the runner's work dir (logs; default work_dirs/<config name>)")
    parser.add_argument("--out", help="results JSON path (a .md table is written next to it)")
    add_runner_args(parser)
    return parser


def parse_args(argv=None):
    return parse_runner_args(build_parser(), argv)


def _map_of(metrics, attack):
    keys = [k for k in metrics if k.startswith(f"{attack}/") and k.endswith("/mAP")]
    return float(metrics[keys[0]]) * 100 if keys else None


def _row(metrics, attack):
    row = {"mAP": _map_of(metrics, attack), "n_images": int(metrics[f"{attack}/n_images"]),
           "images_per_s": float(metrics[f"{attack}/images_per_s"])}
    if f"{attack}/mAP_low" in metrics:
        row["mAP_ci95"] = [float(metrics[f"{attack}/mAP_low"]), float(metrics[f"{attack}/mAP_high"])]
    return row


def describe_attacks(built):
    """What each pass ran (``{spec: built attack or None}``: the registry's ``describe()``)."""
    return {spec: "clean" if attack is None else attack.describe() for spec, attack in built.items()}


def summarise(metrics, attacks, config, checkpoint, attack_cfg, ci_resamples=0, checks=None, built=None):
    rows = {attack: _row(metrics, attack) for attack in attacks}
    summary = {"config": config, "checkpoint": checkpoint, "attack_cfg": attack_cfg,
               "attacks": describe_attacks(built or {a: None for a in attacks}),
               "ci_resamples": ci_resamples, "results": rows,
               "metrics": {k: float(v) for k, v in metrics.items()}}
    worst = worst_case_row(metrics)
    if worst is not None:
        summary["worst_case"] = worst
    if checks is not None:
        summary["checklist"] = [check.as_dict() for check in checks]
    return summary


def markdown(summary):
    """The Table-13 row (one column per plain registry attack, then the worst case per image),
    columns above clean flagged, and the images/s of each pass."""
    attacks = [a for a in summary["results"] if a in COLUMNS]
    results = summary["results"]
    clean = results[CLEAN]["mAP"] if CLEAN in results else None
    worst = summary.get("worst_case")
    header = "| model | n | " + " | ".join(COLUMNS[a] for a in attacks) + (f" | {WORST_COLUMN}" if worst else "") + " |"
    rule = "|---|---|" + "---|" * (len(attacks) + bool(worst))
    name = os.path.splitext(os.path.basename(summary["config"]))[0]
    maps = " | ".join(cell(results[a], None if a == CLEAN else clean) for a in attacks)
    maps += f" | {cell(worst, clean)}" if worst else ""
    speed = " | ".join(f"{results[a]['images_per_s']:.2f}" for a in attacks) + (" |" if worst else "")
    budget = summary["attack_cfg"]
    interval = (f"; [95 % interval: bootstrap over the n test images, {summary['ci_resamples']} resamples]"
                if summary["ci_resamples"] else "")
    table = (f"mAP@0.5 (VOCMetric, %), Linf eps {budget['eps']:g} on 0..255{interval}\n\n{header}\n{rule}\n"
             f"| {name} | {results[attacks[0]]['n_images']} | {maps} |\n| images/s | | {speed} |\n")
    if ABOVE_CLEAN in maps:
        table += f"\n{ABOVE_CLEAN_NOTE}\n"
    if "checklist" in summary:
        table += "\nGradient-masking checklist (A_cls)\n\n" + checks_markdown(
            [Check(**check) for check in summary["checklist"]])
    return table


@tool_main
def main(argv=None):
    args = parse_args(argv)
    select_runner_device(args.device)

    from mmengine.runner import Runner

    from nat_tasks.det.checklist import checklist_attacks, run_checks
    from nat_tasks.det.model_cfg import without_training_keys
    from nat_tasks.det.voc_checks import check_voc_config

    if not os.path.isfile(args.checkpoint):
        raise NatError(f"checkpoint not found: {args.checkpoint}")
    cfg = load_config(args.config, args.cfg_options, args.work_dir)
    cfg.launcher = args.launcher
    cfg.load_from = args.checkpoint
    # The model needs neither the training attack nor the NAT adversary; nat-adaptive gets the latter.
    nasty = cfg.model.get("nasty")
    cfg.model = without_training_keys(cfg.model)
    if args.ci < 0:
        raise NatError(f"--ci {args.ci}: the number of bootstrap resamples must be >= 0")
    attacks = default_attacks(nasty=bool(nasty)) if args.attack == "all" else [args.attack]
    if args.checklist:
        checklist = checklist_attacks(args.eps, args.steps, transfer=bool(args.transfer_from))
        attacks += [spec for spec in checklist if spec not in attacks]
    attack_cfg = dict(eps=args.eps, alpha=args.alpha, steps=args.steps, dag_steps=args.dag_steps,
                      dag_gamma=args.dag_gamma, seed=args.seed, restarts=args.restarts)
    surrogate = dict(zip(("config", "checkpoint"), args.transfer_from)) if args.transfer_from else None
    cfg.test_cfg = dict(type="AdversarialTestLoop", attacks=attacks, attack_cfg=attack_cfg,
                        bootstrap_resamples=args.ci, bootstrap_seed=args.seed,
                        nasty=nasty.to_dict() if nasty else None, surrogate=surrogate)
    check_voc_config(cfg, splits=("test_dataloader",))

    runner = console.attach(Runner.from_cfg(cfg), "evaluating")
    metrics = runner.test()
    checks = (run_checks({attack: _map_of(metrics, attack) for attack in attacks}, args.eps, args.steps)
              if args.checklist else None)
    summary = summarise(metrics, attacks, args.config, args.checkpoint, attack_cfg, args.ci, checks,
                        runner.test_loop.built)
    table = markdown(summary)
    out = args.out or os.path.join(cfg.work_dir, "attack_results.json")
    json_path, _ = write_results(os.path.splitext(out)[0], summary, table)
    print(table)
    print(f"results written to {json_path}")


if __name__ == "__main__":
    main()
