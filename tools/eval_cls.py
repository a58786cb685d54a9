"""Evaluate a classification checkpoint under attacks, RobustBench rules (eval mode, fixed seeds,
[0, 1] inputs, each attack's settings printed with its result).

    python tools/eval_cls.py CONFIG CHECKPOINT [--attacks clean,pgd20,aa] [--n-examples N]
                             [--batch-size B] [--device cpu|cuda|cuda:N] [--out DIR] [--eps E --alpha A]
                             [--surrogate CONFIG:CHECKPOINT] [--transfer-from CONFIG:CHECKPOINT ...] [--resume]
    torchrun --nproc_per_node N tools/eval_cls.py CONFIG CHECKPOINT ... --launcher pytorch
    python tools/eval_cls.py CONFIG CHECKPOINT --threat l0 --k 20 [--attacks clean,spgd,spgd-proj,sparse-rs,saa]
    python tools/eval_cls.py CONFIG CHECKPOINT --checklist [--n-examples N] [--surrogate CONFIG:CHECKPOINT]

Attack names: see --attacks below (nat_tasks/cls/attacks.py). nat-adaptive uses the config's
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

--checklist runs the gradient-masking sanity checks instead (nat_tasks/cls/checklist.py) on a
fixed subset (default 500 examples) and prints pass/fail. Writes <out>/eval_<checkpoint
name>.json and .md (checklist: eval_<name>_checklist.json/.md; default out: the checkpoint's
folder).
"""
import inspect
import os
import sys

import torch
from mmengine.config import DictAction
from mmengine.dist import get_dist_info
from mmengine.registry import DATASETS

from nat_tasks.cls import (ATTACKS, ThreatModel, build_adversary, classifier_from_config, evaluate,
                           gradient_masking_checklist, load_cls_config, nasty_spec, subset_indices)
from nat_tasks.cls.architectures import data_info
from nat_tasks.cls.attacks import SparseThreat
from nat_tasks.cls.eval_state import examples_sha256, file_sha256, open_state
from nat_tasks.cls.evaluation import build_attacks, evaluation_settings, transfer_attacks
from nat_tasks.core.checkpoint import safe_load
from nat_tasks.core.errors import NatError
from nat_tasks.core.sanity import checks_markdown
from nat_tasks.core.stats import bootstrap_interval
from nat_tasks.runtime import markdown_table, resolve_device, tool_main, tool_parser, write_results
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
    parser.add_argument("--attacks",
                        help=f"comma-separated, each one of: {ATTACKS.syntax()} (default clean,pgd20,aa; "
                        "under --threat l0: clean,saa)")
    parser.add_argument("--threat", default="linf", type=str.lower,
                        help="linf (default: --eps/--alpha or the config's val_attack) or l0 (with --k)")
    parser.add_argument("--k", type=int, help="--threat l0: the budget in pixel locations (CIFAR: 20)")
    parser.add_argument("--checklist", action="store_true", help="run the gradient-masking checklist instead")
    parser.add_argument("--surrogate", metavar="CONFIG:CHECKPOINT",
                        help="a classifier to craft transfer-* attacks on (black-box transfer)")
    parser.add_argument("--transfer-from", action="append", metavar="CONFIG:CHECKPOINT",
                        help="repeatable: add PGD-20 and CW-20 crafted on this classifier (black-box transfer, "
                        "Table 5) to the attacks")
    parser.add_argument("--resume", action="store_true",
                        help="continue the evaluation state <out>/eval_<name>.state.json of an interrupted run")
    parser.add_argument("--launcher", default="none",
                        help="none, or pytorch under torchrun (slurm, mpi: GPUs): each process attacks a share "
                        "of the batches, rank 0 writes")
    parser.add_argument("--square-queries", type=int, default=5000, help="Square's budget in the checklist")
    parser.add_argument("--gap-threshold", type=float, default=5.0,
                        help="checklist: flag a PGD-20 - AutoAttack gap above this many points")
    parser.add_argument("--n-examples", type=int,
                        help="N test examples, a fixed random subset (default: the whole test split; "
                        "500 with --checklist)")
    parser.add_argument("--batch-size", type=int, default=500,
                        help="examples per attacked batch; each batch is seeded from --seed and its index")
    parser.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda if available, else cpu)")
    parser.add_argument("--out", help="output folder (default: the checkpoint's folder)")
    parser.add_argument("--eps", type=float, help="Linf budget in [0, 1] (default: the config's val_attack)")
    parser.add_argument("--alpha", type=float, help="PGD step (default: the config's val_attack)")
    parser.add_argument("--seed", type=int, default=0, help="the seed every batch's seed derives from")
    parser.add_argument("--data-root", help="the dataset folder (overrides the config's data_root)")
    parser.add_argument("--cfg-options", nargs="+", action=DictAction, metavar="KEY=VALUE",
                        help="override config keys (mmengine syntax)")
    return parser


def parse_args(argv):
    return build_parser().parse_args(argv)


def load_examples(dataset_cfg, n):
    """``n`` examples of the config's test set (a fixed subset, ``subset_indices``): their indices
    in the test set, the images and the labels."""
    if n is not None and n < 1:
        raise NatError("--n-examples must be at least 1")
    dataset = DATASETS.build(dataset_cfg)
    indices = subset_indices(len(dataset), n)
    samples = [dataset[i] for i in indices]
    return indices, torch.stack([s["inputs"] for s in samples]), torch.tensor([s["labels"] for s in samples])


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
    in its meta; a file from elsewhere did not record it."""
    meta = safe_load(checkpoint).get("meta") or {}
    return meta.get("model_selection", "not recorded (not a nat_tasks trainer checkpoint)")


def results_table(results):
    rows = [dict(r, interval=f"[{r['low']:.1f}, {r['high']:.1f}]") for r in results]
    return markdown_table(rows, [("attack", "attack"), ("accuracy", "accuracy (%)"), ("interval", "95 % CI"),
                                 ("n", "n"), ("settings", "settings")])


def needs(attacks, entry):
    """Whether one of the named attacks takes ``entry`` (e.g. 'adversary', 'surrogate') from the run."""
    return any(entry in inspect.signature(ATTACKS.match(name)[0]).parameters for name in attacks)


def threat_model(args, cfg):
    """``--threat linf`` (``--eps``/``--alpha`` or the config's val_attack) or ``--threat l0 --k K``."""
    if args.threat not in ("linf", "l0"):
        raise NatError(f"--threat {args.threat!r}: expected linf or l0")
    if args.threat == "l0":
        if args.k is None:
            raise NatError("--threat l0 needs --k (the budget in pixel locations, e.g. 20 on CIFAR)")
        if args.eps is not None or args.alpha is not None:
            raise NatError("--eps/--alpha set the Linf threat model; under --threat l0 the budget is --k")
        if args.checklist:
            raise NatError("--checklist checks the Linf threat model; run it without --threat l0")
        return SparseThreat(k=args.k)
    if args.k is not None:
        raise NatError("--k is the l0 budget: add --threat l0")
    val_attack = cfg.model.get("val_attack", {})
    eps = args.eps if args.eps is not None else val_attack.get("eps")
    alpha = args.alpha if args.alpha is not None else val_attack.get("alpha")
    if eps is None or alpha is None:
        raise NatError("no threat model: pass --eps and --alpha (the config has no model.val_attack)")
    return ThreatModel(eps=float(eps), alpha=float(alpha))


def threat_record(threat):
    if threat.norm == "L0":
        return dict(norm="L0", k=threat.k)
    return dict(norm=threat.norm, eps=threat.eps, alpha=threat.alpha)


def state_identity(args, attacks, x, y, nasty, surrogates):
    """What, besides the attacks and their settings, makes a saved evaluation this one: the
    checkpoint (path and content), the examples, and the other models' weights the attacks use."""
    identity = dict(checkpoint=os.path.abspath(args.checkpoint), checkpoint_sha256=file_sha256(args.checkpoint),
                    examples_sha256=examples_sha256(x, y),
                    surrogates={spec: file_sha256(spec.rpartition(":")[2]) for spec in surrogates})
    if needs(attacks, "adversary"):
        identity["adversary_sha256"] = [file_sha256(m["checkpoint"]) for m in nasty.members]
    return identity


def worst_case(state):
    """Robust under every attack of the run, per example (the report's last line)."""
    flags = state.robust_all()
    low, high = bootstrap_interval(flags)
    return dict(accuracy=100.0 * sum(flags) / len(flags), low=100.0 * low, high=100.0 * high, correct=sum(flags),
                n=len(flags), flags=flags)


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
    model = classifier_from_config(cfg.model, args.checkpoint)
    n_examples = args.n_examples if args.n_examples is not None or not args.checklist else 500
    indices, x, y = load_examples(cfg.test_dataloader.dataset if cfg.get("test_dataloader")
                                  else cfg.val_dataloader.dataset, n_examples)
    if threat.norm == "L0" and threat.k > x.shape[-2] * x.shape[-1]:
        raise NatError(f"--k {threat.k} is more than the {x.shape[-2]}x{x.shape[-1]} = "
                       f"{x.shape[-2] * x.shape[-1]} pixel locations of these images")
    stem = "eval_" + os.path.splitext(os.path.basename(args.checkpoint))[0] + ("_checklist" if args.checklist else "")
    out = os.path.join(args.out or os.path.dirname(os.path.abspath(args.checkpoint)), stem)
    state = None
    if not args.checklist:
        settings = evaluation_settings(built, threat, n_examples=len(x), batch_size=args.batch_size, seed=args.seed,
                                       **state_identity(args, attacks, x, y, nasty,
                                                       [s for s in (args.surrogate, *specs) if s]))
        state = open_state(out + ".state.json", settings, resume=args.resume, writer=rank == 0)
    processes = f", {world} processes" if world > 1 else ""
    log(f"evaluating {args.checkpoint} on {len(x)} test examples, {threat.describe()}, seed {args.seed}, "
        f"{device}{processes}")
    common = dict(run_settings, batch_size=args.batch_size, progress=rank == 0, log=log)
    selection = model_selection(args.checkpoint)
    log(f"model selection of this checkpoint: {selection}")
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
        results = evaluate(model, x, y, built, threat, state=state, **common)
        worst = worst_case(state)
        report.update(results=results, worst_case=worst, state=out + ".state.json")
        table = results_table(results) + (
            f"\nRobust under every attack above: {worst['accuracy']:.2f} % [{worst['low']:.1f}, {worst['high']:.1f}] "
            f"({worst['correct']}/{worst['n']}). Per example (test-set indices in `examples`): "
            f"`results[].flags` and `worst_case.flags` in {os.path.basename(out)}.json\n")
    if rank == 0:
        write_results(out, report, f"# {args.checkpoint}\n\nModel selection: {selection}.\n\n{table}")
    log("\n" + table + f"\nWrote {out}.json and .md")


if __name__ == "__main__":
    main()
