"""One robustness report page for classification checkpoints (``nat_tasks.cls.evaluation.robustness_report``)."""
import os
import shlex
import sys
import time

from nat_tasks.cls import classifier_from_config, load_cls_config
from nat_tasks.cls.analysis import FIGURES, parse_figures
from nat_tasks.cls.evaluation.attacks import check_threat
from nat_tasks.cls.evaluation.eval_setup import (add_evaluation_options, attack_names, check_one_data_set, check_spec,
                                      load_examples, load_surrogate, model_list, threat_model)
from nat_tasks.cls.evaluation.robustness_report import (ModelInput, ReportSettings, analysis_section, build_report, model_report,
                                             states_folder)
from nat_tasks.core.errors import NatError
from nat_tasks.runtime import resolve_device, tool_main, tool_parser

DESCRIPTION = """\
Write one robustness report page for classification checkpoints: per model clean / PGD / AutoAttack
(sparse-AutoAttack with --threat l0) with 95 % intervals, the worst case over every attack run at the
budget, the gradient-masking checklist's verdicts, transfer rows from --surrogate, the model selection,
the config; the analysis figures of all models; the code version. The evaluation is eval_cls's (same
rules); each attack's per-example results are kept in <out>/states/, the figures in <out>/analysis/, so
running the report again with the same --out reads them back instead of attacking again.
Writes <out>/report.html (self-contained: opens from disk), report.md and report.json.
Guide: docs/user_guide/report.md."""

EXAMPLES = """\
examples:
  python tools/report_cls.py CONFIG_AT CKPT_AT CONFIG_NAT CKPT_NAT --labels AT,NAT --out work_dirs/report
  python tools/report_cls.py CONFIG CKPT --threat l0 --k 20 --out work_dirs/report_l0"""


def build_parser():
    parser = tool_parser("report_cls", DESCRIPTION, EXAMPLES)
    parser.add_argument("pairs", nargs="+", metavar="CONFIG CKPT",
                        help="a config and a checkpoint per model (trainer checkpoint or plain state_dict)")
    parser.add_argument("--out", required=True, help="the report's folder (its states make a rerun resume)")
    parser.add_argument("--labels", help="comma-separated, one per model (default: the config names, "
                        "CONFIG:CKPT names when configs repeat)")
    add_evaluation_options(parser)
    parser.add_argument("--n-examples", type=int,
                        help="N test examples per model, a fixed random subset (default: the whole test split)")
    parser.add_argument("--no-checklist", action="store_true", help="leave the gradient-masking checklist out")
    parser.add_argument("--strongest", default="aa",
                        help="the attack the checklist compares every other one with (default aa, standard "
                        "AutoAttack; a cheaper one such as apgd-ce-20 only for quick looks)")
    parser.add_argument("--figures", default=",".join(FIGURES),
                        help=f"analysis figures, some of {','.join(FIGURES)} (default: all)")
    parser.add_argument("--analysis-examples", type=int, default=1000,
                        help="test examples of the first config for the figures (default 1000; 0: no figures)")
    parser.add_argument("--umap-points", type=int, default=2000, help="at most this many examples in the UMAP")
    parser.add_argument("--class", dest="reference_class", type=int, default=0,
                        help="the class whose samples the Fig. 6 / Fig. 8 bars show (default 0)")
    parser.add_argument("--title", default="Robustness report", help="the page's title")
    return parser


@tool_main
def main(argv=None):
    start = time.perf_counter()
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    models = model_list(args.pairs, args.labels)
    cfgs = {label: load_cls_config(config, data_root=args.data_root, cfg_options=args.cfg_options)
            for label, config, _ in models}
    settings = report_settings(args, cfgs)
    surrogate = load_surrogate(args.surrogate, args.data_root) if args.surrogate else None
    sections = []
    for label, config, checkpoint in models:  # one model's examples in memory at a time
        examples = load_examples(cfgs[label], args.n_examples)[:3]
        entry = ModelInput(label, config, cfgs[label], checkpoint, examples, states_folder(args.out, label))
        sections.append(model_report(entry, settings, surrogate=surrogate))
    analysis = None
    if settings.figures:
        first = cfgs[models[0][0]]
        _, x, y, names = load_examples(first, args.analysis_examples)
        classifiers = {label: (classifier_from_config(cfgs[label].model, checkpoint), checkpoint)
                       for label, _, checkpoint in models}
        analysis = analysis_section(classifiers, x, y, settings, os.path.join(args.out, "analysis"),
                                    class_names=names if names and len(names) == first.model.get("num_classes")
                                    else None)
    command = shlex.join(["python", "tools/report_cls.py", *map(str, argv)])
    page = build_report(sections, settings, args.out, analysis=analysis, title=args.title, command=command)
    print(f"Wrote {page} (and report.md, report.json; {time.perf_counter() - start:.0f} s)")


def report_settings(args, cfgs):
    """The checked ``ReportSettings`` of the options: every mistake is one line before any work."""
    threat = threat_model(args, next(iter(cfgs.values())))
    attacks = attack_names(args.attacks, threat)
    if not attacks:
        raise NatError("no attack to run: name some with --attacks (e.g. clean,pgd20,aa)")
    for name in attacks + ([args.strongest] if not args.no_checklist and threat.norm == "Linf" else []):
        check_threat(name, threat)  # an unknown name, or one of the other threat model
    if args.surrogate and threat.norm == "L0":
        raise NatError("--surrogate adds Linf transfer attacks; under --threat l0 leave it out")
    if args.square_queries < 1 or args.analysis_examples < 0 or args.umap_points < 4:
        raise NatError("--square-queries >= 1, --analysis-examples >= 0 and --umap-points >= 4 are needed")
    figures = parse_figures(args.figures) if args.analysis_examples else []
    if figures:
        check_one_data_set(cfgs)
    return ReportSettings(threat=threat, attacks=attacks, checklist=not args.no_checklist, strongest=args.strongest,
                          square_queries=args.square_queries, gap_threshold=args.gap_threshold,
                          surrogate=check_spec(args.surrogate, "--surrogate") if args.surrogate else None,
                          batch_size=args.batch_size, seed=args.seed, device=resolve_device(args.device),
                          figures=figures, umap_points=args.umap_points, reference_class=args.reference_class)


if __name__ == "__main__":
    main()
