"""The paper's analysis figures (Figs. 3-8) for classification checkpoints, side by side.

    python tools/analyze_cls.py CONFIG CKPT [CONFIG CKPT ...] --labels VT,AT,NAT [--n-examples N]
                                [--out DIR] [--figures sparsity,hyperplanes,umap,boundary,weights,runner_up]
                                [--class C] [--umap-points M] [--device cpu|cuda|cuda:N] [--seed S]

Every model is analysed on the same fixed random subset of the first config's test split
(``--n-examples``, default 1000). Figures (one PNG each, models side by side, one scale per figure,
the definition as caption): sparsity (Fig. 3; clean and Linf PGD with the first config's
model.val_attack eps/alpha/steps, or --eps/--alpha/--steps), hyperplanes (Fig. 4, eq. 12),
umap (Fig. 5), boundary (Fig. 6), weights (Fig. 7), runner_up (Fig. 8). Writes
<out>/<figure>.png, <out>/analysis.json (every number) and <out>/analysis.md (one scalar per figure
and model, and the definitions). Needs networks that end in a linear classifier (every architecture
of nat_tasks/cls/models/architectures.py does).
"""
import sys

from nat_tasks.cls import classifier_from_config, load_cls_config
from nat_tasks.cls.analysis import FIGURES, analyze_models, parse_figures
from nat_tasks.cls.evaluation.eval_setup import check_one_data_set, load_examples, model_list
from nat_tasks.core.errors import NatError
from nat_tasks.runtime import resolve_device, tool_main, tool_parser


DESCRIPTION = """\
The paper's analysis figures (Figs. 3-8: sparsity, hyperplanes, UMAP, boundary, weights, runner-up) for
classification checkpoints side by side, on one fixed random subset of the first config's test split
(its data_root, or --data-root; layouts: docs/user_guide/data.md; figures: docs/user_guide/analysis.md).
Writes <out>/<figure>.png, analysis.json and analysis.md."""

EXAMPLES = """\
example:
  python tools/analyze_cls.py CONFIG_AT CKPT_AT CONFIG_NAT CKPT_NAT --labels AT,NAT --out work_dirs/analysis"""


def build_parser():
    parser = tool_parser("analyze_cls", DESCRIPTION, EXAMPLES)
    parser.add_argument("pairs", nargs="+", metavar="CONFIG CKPT",
                        help="a config and a checkpoint per model (trainer checkpoint or plain state_dict)")
    parser.add_argument("--labels", help="comma-separated, one per model (default: the config names, "
                        "CONFIG:CKPT names when configs repeat)")
    parser.add_argument("--figures", default=",".join(FIGURES), help=f"comma-separated, some of {','.join(FIGURES)}")
    parser.add_argument("--n-examples", type=int, default=1000, help="test examples, a fixed random subset")
    parser.add_argument("--umap-points", type=int, default=2000, help="at most this many examples in the UMAP")
    parser.add_argument("--class", dest="reference_class", type=int, default=0,
                        help="the class whose samples the Fig. 6 / Fig. 8 bars show (default 0)")
    parser.add_argument("--out", default="work_dirs/analysis", help="output folder (default work_dirs/analysis)")
    parser.add_argument("--eps", type=float, help="Linf budget of the sparsity figure's PGD (default: val_attack)")
    parser.add_argument("--alpha", type=float, help="its step (default: the config's val_attack)")
    parser.add_argument("--steps", type=int, help="its steps (default: the config's val_attack, else 10)")
    parser.add_argument("--batch-size", type=int, default=256, help="examples per forward/attack batch")
    parser.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda if available, else cpu)")
    parser.add_argument("--seed", type=int, default=0, help="the PGD random start and UMAP's random_state")
    parser.add_argument("--data-root", help="the dataset folder (overrides the configs' data_root)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser


def parse_args(argv):
    return build_parser().parse_args(argv)


@tool_main
def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    figures = parse_figures(args.figures)
    models = model_list(args.pairs, args.labels)
    if args.n_examples < 2 or args.umap_points < 4 or args.batch_size < 1:
        raise NatError("--n-examples >= 2, --umap-points >= 4 and --batch-size >= 1 are needed")
    device = resolve_device(args.device)
    cfgs = {label: load_cls_config(config, data_root=args.data_root) for label, config, _ in models}
    first = cfgs[models[0][0]]
    check_one_data_set(cfgs)
    num_classes = first.model.get("num_classes")
    if num_classes is not None and not 0 <= args.reference_class < num_classes:
        raise NatError(f"--class {args.reference_class} is not a class of these models (0..{num_classes - 1})")
    attack = None
    if "sparsity" in figures:
        val_attack = first.model.get("val_attack", {})
        attack = dict(eps=args.eps if args.eps is not None else val_attack.get("eps"),
                      alpha=args.alpha if args.alpha is not None else val_attack.get("alpha"),
                      steps=args.steps if args.steps is not None else val_attack.get("steps", 10))
        if attack["eps"] is None or attack["alpha"] is None:
            raise NatError("no threat model for the sparsity figure: pass --eps and --alpha "
                           "(the first config has no model.val_attack)")
        attack = {k: (int(v) if k == "steps" else float(v)) for k, v in attack.items()}
    classifiers = {label: classifier_from_config(cfgs[label].model, checkpoint) for label, _, checkpoint in models}
    _, x, y, names = load_examples(first, args.n_examples)
    print(f"analysing {len(classifiers)} model(s) on {len(x)} test examples of {models[0][1]}, {device}, "
          f"seed {args.seed}: {', '.join(figures)}")
    class_names = names if names is not None and len(names) == num_classes else None
    _, table = analyze_models(classifiers, x, y, args.out, figures=figures, attack=attack, seed=args.seed,
                              batch_size=args.batch_size, device=str(device), reference_class=args.reference_class,
                              umap_points=args.umap_points, class_names=class_names, progress=not args.no_progress,
                              title=f"Analysis of {', '.join(classifiers)} ({len(x)} test examples)")
    print("\n" + table + f"\nWrote {', '.join(f + '.png' for f in figures)}, analysis.json and analysis.md to "
          f"{args.out}")


if __name__ == "__main__":
    main()
