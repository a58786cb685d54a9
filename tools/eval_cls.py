"""Evaluate a classification checkpoint under attacks, RobustBench rules (eval mode, fixed seeds,
[0, 1] inputs, each attack's settings printed with its result).

    python tools/eval_cls.py CONFIG CHECKPOINT [--attacks clean,pgd20,aa] [--n-examples N]
                             [--batch-size B] [--device cpu|cuda|cuda:N] [--out DIR] [--eps E --alpha A]
                             [--surrogate CONFIG:CHECKPOINT] [--transfer-from CONFIG:CHECKPOINT ...] [--resume]
    torchrun --nproc_per_node N tools/eval_cls.py CONFIG CHECKPOINT ... --launcher pytorch
    python tools/eval_cls.py CONFIG CHECKPOINT --threat l0 --k 20 [--attacks clean,spgd,spgd-proj,sparse-rs,saa]
    python tools/eval_cls.py CONFIG CHECKPOINT --checklist [--n-examples N] [--surrogate CONFIG:CHECKPOINT]

Attack names: see --attacks below (nat_tasks/cls/evaluation/attacks.py). nat-adaptive uses the config's
model.nasty (its adversary, weight, tau and tau^2 switch); transfer-* attacks are crafted on
--surrogate; each --transfer-from model adds PGD-20 and CW-20 crafted on it (black-box transfer,
the paper's Table 5). --threat l0 --k K evaluates the sparse threat model (at most K pixel
locations changed, all channels of a location counting once) with the l0 attacks (spgd,
spgd-proj, sparse-rs, saa; default clean,saa at the paper's 10000 iterations / queries). Every
accuracy counts an example robust only if it is also correct clean, and comes with a 95 %
bootstrap interval over the examples; the report also gives, per example, the flags of every
attack and of all of them (robust under every one).

The attacks run batch by batch (each batch seeded from --seed and its index only) and the
per-example results are kept in <out>/eval_<name>.state.json, rewritten after every batch:
--resume continues a killed run where it stopped, with the same final numbers (its settings must
be the same: checkpoint, examples, attacks, threat model, seed, batch size). Under torchrun
(--launcher pytorch; gloo on CPUs, nccl on GPUs) each process attacks a share of the batches and
rank 0 gathers them and writes: the numbers of one process.

--checklist runs the gradient-masking sanity checks instead (nat_tasks/cls/evaluation/checklist.py) on a
fixed subset (default 500 examples) and prints pass/fail. Writes <out>/eval_<checkpoint
name>.json and .md (checklist: eval_<name>_checklist.json/.md; default out: the checkpoint's
folder).
"""
import os
import sys

from mmengine.dist import get_dist_info

from nat_tasks.cls import (build_adversary, classifier_from_config, evaluate, gradient_masking_checklist,
                           load_cls_config, nasty_spec)
from nat_tasks.cls.models.architectures import data_info
from nat_tasks.cls.evaluation.eval_setup import (add_evaluation_options, check_spec, load_examples, load_surrogate,
                                      model_selection, needs, state_identity, threat_model, threat_record)
from nat_tasks.cls.evaluation.eval_state import open_state
from nat_tasks.cls.evaluation.evaluation import (build_attacks, evaluation_settings, results_table, transfer_attacks,
                                      worst_case)
from nat_tasks.core.errors import NatError, on_fault
from nat_tasks.core.sanity import checks_markdown
from nat_tasks.runtime import resolve_device, tool_main, tool_parser, write_results
from nat_tasks.runtime.distributed import check_launch, process_group


DESCRIPTION = """\
Evaluate a classification checkpoint under attacks (RobustBench rules: eval mode, [0, 1] inputs, fixed
seeds; every accuracy with a 95 % interval; resumable), or run the gradient-masking checklist.
Data: the config's test split under its data_root (or --data-root); layouts: docs/user_guide/data.md,
rules: docs/user_guide/evaluation.md. Writes eval_<checkpoint name>.json/.md (default: next to it)."""

EXAMPLES = """\
examples:
  python tools/eval_cls.py CONFIG CHECKPOINT --attacks clean,pgd20,aa --n-examples 1000
  python tools/eval_cls.py CONFIG CHECKPOINT --threat l0 --k 20
  python tools/eval_cls.py CONFIG CHECKPOINT --checklist --surrogate CONFIG:CHECKPOINT
  torchrun --nproc_per_node 2 tools/eval_cls.py CONFIG CHECKPOINT --launcher pytorch"""


def build_parser():
    parser = tool_parser("eval_cls", DESCRIPTION, EXAMPLES)
    parser.add_argument("config", help="the classification config the checkpoint was trained with")
    parser.add_argument("checkpoint", help="a trainer checkpoint (epoch_N.pth, best_*.pth) or a plain state_dict")
    add_evaluation_options(parser)
    parser.add_argument("--checklist", action="store_true", help="run the gradient-masking checklist instead")
    parser.add_argument("--transfer-from", action="append", metavar="CONFIG:CHECKPOINT",
                        help="repeatable: add PGD-20 and CW-20 crafted on this classifier (black-box transfer, "
                        "Table 5) to the attacks")
    parser.add_argument("--resume", action="store_true",
                        help="continue the evaluation state <out>/eval_<name>.state.json of an interrupted run")
    parser.add_argument("--launcher", default="none",
                        help="none, or pytorch under torchrun (slurm, mpi: GPUs): each process attacks a share "
                        "of the batches, rank 0 writes")
    parser.add_argument("--n-examples", type=int,
                        help="N test examples, a fixed random subset (default: the whole test split; "
                        "500 with --checklist)")
    parser.add_argument("--out", help="output folder (default: the checkpoint's folder)")
    return parser


def parse_args(argv):
    return build_parser().parse_args(argv)


@tool_main
def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    cfg = load_cls_config(args.config, data_root=args.data_root, cfg_options=args.cfg_options)
    check_launch(args.launcher, args.device)
    if args.resume and args.checklist:
        raise NatError("--resume continues an attack evaluation; the --checklist runs afresh")
    if args.checklist and args.transfer_from:
        raise NatError("--transfer-from adds attacks to an evaluation; the --checklist takes --surrogate")
    specs = [check_spec(spec, "--transfer-from") for spec in args.transfer_from or []]
    if len(set(specs)) < len(specs):
        raise NatError(f"--transfer-from {next(s for s in specs if specs.count(s) > 1)} is given twice")
    with process_group(args.launcher):
        run(args, cfg, specs)


def run(args, cfg, specs):
    rank, world = get_dist_info()
    log = print if rank == 0 else (lambda *_, **__: None)
    nasty = nasty_spec(cfg.model)
    threat = threat_model(args, cfg)
    names = args.attacks if args.attacks is not None else ("clean,saa" if threat.norm == "L0" else "clean,pgd20,aa")
    attacks = [] if args.checklist else [a.strip() for a in names.split(",") if a.strip()]
    if args.square_queries < 1:
        raise NatError("--square-queries must be at least 1")
    device = resolve_device(args.device)
    adversary = None
    if needs(attacks, "adversary"):  # an unknown name fails here
        if nasty is None:
            raise NatError("nat-adaptive needs a NAT config (model.nasty)")
        adversary = build_adversary(nasty, data_info(cfg.model))
    if needs(attacks, "surrogate") and not args.surrogate:
        raise NatError("transfer-* attacks need --surrogate CONFIG:CHECKPOINT")
    surrogate = load_surrogate(args.surrogate, args.data_root) if args.surrogate else None
    transfer = transfer_attacks([(spec, load_surrogate(spec, args.data_root, "--transfer-from")) for spec in specs],
                                threat, device=device)
    run_settings = dict(seed=args.seed, device=device, num_classes=cfg.model.get("num_classes"))
    built = build_attacks(attacks, threat, adversary=adversary, nasty=nasty, surrogate=surrogate,
                          **run_settings) + transfer  # before any work
    if not built and not args.checklist:
        raise NatError("no attack to run: name some with --attacks (e.g. clean,pgd20,aa) or --transfer-from")
    n_examples = args.n_examples if args.n_examples is not None or not args.checklist else 500
    indices, x, y, _ = load_examples(cfg, n_examples)
    model = classifier_from_config(cfg.model, args.checkpoint)
    if threat.norm == "L0" and threat.k > x.shape[-2] * x.shape[-1]:
        raise NatError(f"--k {threat.k} is more than the {x.shape[-2]}x{x.shape[-1]} = "
                       f"{x.shape[-2] * x.shape[-1]} pixel locations of these images")
    stem = "eval_" + os.path.splitext(os.path.basename(args.checkpoint))[0] + ("_checklist" if args.checklist else "")
    out = os.path.join(args.out or os.path.dirname(os.path.abspath(args.checkpoint)), stem)
    state = None
    if not args.checklist:
        settings = evaluation_settings(built, threat, n_examples=len(x), batch_size=args.batch_size, seed=args.seed,
                                       **state_identity(args.checkpoint, attacks, x, y, nasty,
                                                       [s for s in (args.surrogate, *specs) if s]))
        state = open_state(out + ".state.json", settings, resume=args.resume, writer=rank == 0)
    processes = f", {world} processes" if world > 1 else ""
    log(f"evaluating {args.checkpoint} on {len(x)} test examples, {threat.describe()}, seed {args.seed}, "
        f"{device}{processes}")
    common = dict(run_settings, batch_size=args.batch_size, progress=rank == 0, log=log)
    selection, health = model_selection(args.checkpoint)
    log(f"model selection of this checkpoint: {selection}")
    if health:
        log(f"warning: the trainer saved this checkpoint {health}")
    report = dict(config=args.config, checkpoint=args.checkpoint, model_selection=selection, n_examples=len(x),
                  seed=args.seed, device=str(device), threat=threat_record(threat), surrogate=args.surrogate,
                  transfer_from=specs, examples=indices)
    if args.checklist:
        results, checks = gradient_masking_checklist(model, x, y, threat, surrogate=surrogate,
                                                     square_queries=args.square_queries,
                                                     gap_threshold=args.gap_threshold, **common)
        report.update(results=results, checks=[c.as_dict() for c in checks])
        table = results_table(results) + "\n" + checks_markdown(checks)
    else:
        with on_fault(os.path.dirname(out), lambda: written_so_far(out, state, finished=False)):
            results = evaluate(model, x, y, built, threat, state=state, **common)
        worst = worst_case(results)
        report.update(results=results, worst_case=worst, state=out + ".state.json")
        table = results_table(results) + (
            f"\nRobust under every attack above: {worst['accuracy']:.2f} % [{worst['low']:.1f}, {worst['high']:.1f}] "
            f"({worst['correct']}/{worst['n']}). Per example (test-set indices in `examples`): "
            f"`results[].flags` and `worst_case.flags` in {os.path.basename(out)}.json\n")
    log("\n" + table)  # before writing: a full disk cannot hide the numbers
    if rank == 0:
        with on_fault(os.path.dirname(out), lambda: written_so_far(out, state, finished=True)):
            write_results(out, report, f"# {args.checkpoint}\n\nModel selection: {selection}.\n\n{table}")
    log(f"Wrote {out}.json and .md")


def written_so_far(out, state, finished):
    """(what is intact, how to continue) when a write of the evaluation fails (``on_fault``)."""
    if state is None:
        return "the checklist's results are printed above", "rerun the same command"
    if finished:
        return (f"the table is printed above and the evaluation state {out}.state.json is complete",
                "rerun the same command with --resume to rebuild the report (no attack runs again)")
    return f"the evaluation state {out}.state.json holds every batch finished so far", "rerun with --resume"


if __name__ == "__main__":
    main()
