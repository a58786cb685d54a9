"""Evaluate a classification checkpoint under attacks, RobustBench rules (eval mode, fixed seeds,
[0, 1] inputs, each attack's settings printed with its result).

    python tools/eval_cls.py CONFIG CHECKPOINT [--attacks clean,pgd20,aa] [--n-examples N]
                             [--batch-size B] [--device cpu|cuda] [--out DIR] [--eps E --alpha A]
                             [--surrogate CONFIG:CHECKPOINT]
    python tools/eval_cls.py CONFIG CHECKPOINT --checklist [--n-examples N] [--surrogate CONFIG:CHECKPOINT]

Attacks: clean, fgsm, pgd<k>, pgd<k>x<restarts>, cw, cw<k>, aa, apgd-ce-<k>, apgd-dlr-<k>,
square[<queries>], nat-adaptive[<k>], transfer-<fgsm|pgd..|cw..> (crafted on --surrogate).
Every accuracy counts an example robust only if it is also correct clean, and comes with a 95 %
bootstrap interval over the examples. --checklist runs the gradient-masking sanity checks instead
(nat_tasks/cls/checklist.py) on a fixed subset (default 500 examples) and prints pass/fail.
Writes <out>/eval_<checkpoint name>.json and .md (checklist: eval_<name>_checklist.json/.md;
default out: the checkpoint's folder).
"""
import argparse
import json
import os
import sys

from mmengine.config import DictAction

from nat_tasks.core.errors import NatError, cli_entry


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config")
    parser.add_argument("checkpoint", help="a trainer checkpoint (epoch_N.pth, best_*.pth) or a plain state_dict")
    parser.add_argument("--attacks", default="clean,pgd20,aa", help="comma-separated (default clean,pgd20,aa)")
    parser.add_argument("--checklist", action="store_true", help="run the gradient-masking checklist instead")
    parser.add_argument("--surrogate", metavar="CONFIG:CHECKPOINT",
                        help="a classifier to craft transfer-* attacks on (black-box transfer)")
    parser.add_argument("--square-queries", type=int, default=5000, help="Square's budget in the checklist")
    parser.add_argument("--gap-threshold", type=float, default=5.0,
                        help="checklist: flag a PGD-20 - AutoAttack gap above this many points")
    parser.add_argument("--n-examples", type=int,
                        help="N test examples, a fixed random subset (default: the whole test split; "
                        "500 with --checklist)")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--device", choices=("cpu", "cuda"), help="default: cuda if available, else cpu")
    parser.add_argument("--out", help="output folder (default: the checkpoint's folder)")
    parser.add_argument("--eps", type=float, help="Linf budget in [0, 1] (default: the config's val_attack)")
    parser.add_argument("--alpha", type=float, help="PGD step (default: the config's val_attack)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-root", help="the dataset folder (overrides the config's data_root)")
    parser.add_argument("--cfg-options", nargs="+", action=DictAction, help="override config keys: key=value")
    return parser.parse_args(argv)


def load_examples(dataset_cfg, n):
    """``n`` examples of the config's test set (a fixed subset, ``subset_indices``) as tensors."""
    import torch
    from mmengine.registry import DATASETS

    from nat_tasks.cls.evaluation import subset_indices

    if n is not None and n < 1:
        raise NatError("--n-examples must be at least 1")
    dataset = DATASETS.build(dataset_cfg)
    samples = [dataset[i] for i in subset_indices(len(dataset), n)]
    return torch.stack([s["inputs"] for s in samples]), torch.tensor([s["labels"] for s in samples])


def load_surrogate(spec, data_root):
    """``CONFIG:CHECKPOINT`` -> the [0, 1]-input classifier of that config with those weights."""
    from nat_tasks.cls.classifier import classifier_from_config
    from nat_tasks.cls.train import load_config

    config, sep, checkpoint = spec.rpartition(":")
    if not sep or not config or not checkpoint:
        raise NatError(f"--surrogate expects CONFIG:CHECKPOINT, got {spec!r}")
    return classifier_from_config(load_config(config, data_root=data_root).model, checkpoint)


def model_selection(checkpoint):
    """How the trainer chose this checkpoint ('validation (n=...)' or 'test-selected'), as recorded
    in its meta; a file from elsewhere did not record it."""
    from nat_tasks.core.checkpoint import safe_load

    meta = safe_load(checkpoint).get("meta") or {}
    return meta.get("model_selection", "not recorded (not a nat_tasks trainer checkpoint)")


def results_table(results):
    from nat_tasks.cls.evaluation import markdown_table

    rows = [dict(r, interval=f"[{r['low']:.1f}, {r['high']:.1f}]") for r in results]
    return markdown_table(rows, [("attack", "attack"), ("accuracy", "accuracy (%)"), ("interval", "95 % CI"),
                                 ("n", "n"), ("settings", "settings")])


@cli_entry
def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    import torch

    import nat_tasks.cls  # noqa: F401  registers the data sets
    from nat_tasks.cls.checklist import gradient_masking_checklist
    from nat_tasks.cls.classifier import DATA_INFO_KEYS, build_adversary, classifier_from_config
    from nat_tasks.cls.evaluation import ThreatModel, evaluate, parse_attack
    from nat_tasks.cls.train import load_config
    from nat_tasks.core.checkpoint import atomic_write_text
    from nat_tasks.core.pixel import default_device
    from nat_tasks.core.sanity import checks_markdown

    cfg = load_config(args.config, data_root=args.data_root, cfg_options=args.cfg_options)
    attacks = [a for a in args.attacks.split(",") if a.strip()]
    specs = [] if args.checklist else [parse_attack(a) for a in attacks]  # fail on a typo before any work
    val_attack = cfg.model.get("val_attack", {})
    eps = args.eps if args.eps is not None else val_attack.get("eps")
    alpha = args.alpha if args.alpha is not None else val_attack.get("alpha")
    if eps is None or alpha is None:
        raise NatError("no threat model: pass --eps and --alpha (the config has no model.val_attack)")
    threat = ThreatModel(eps=float(eps), alpha=float(alpha))
    if args.square_queries < 1:
        raise NatError("--square-queries must be at least 1")
    adversary = nat_settings = None
    if any(s.kind == "nat-adaptive" for s in specs):
        method = cfg.model.get("method", {})
        if method.get("type") != "nat" or not cfg.model.get("adversary"):
            raise NatError("nat-adaptive needs a NAT config (model.method.type='nat' and model.adversary)")
        info = {k: cfg.model[k] for k in DATA_INFO_KEYS if k in cfg.model}
        adversary = build_adversary(cfg.model.adversary, info)
        nat_settings = dict(w=method.get("w", 0.006), tau=method.get("tau", 4.0),
                            scale_by_tau2=method.get("scale_by_tau2", True))
    if any(s.transfer for s in specs) and not args.surrogate:
        raise NatError("transfer-* attacks need --surrogate CONFIG:CHECKPOINT")
    device = args.device or default_device()
    if device == "cuda" and not torch.cuda.is_available():
        raise NatError("--device cuda but no CUDA device is available")
    model = classifier_from_config(cfg.model, args.checkpoint)
    surrogate = load_surrogate(args.surrogate, args.data_root) if args.surrogate else None
    n_examples = args.n_examples if args.n_examples is not None or not args.checklist else 500
    x, y = load_examples(cfg.test_dataloader.dataset if cfg.get("test_dataloader") else cfg.val_dataloader.dataset,
                         n_examples)
    print(f"evaluating {args.checkpoint} on {len(x)} test examples, {threat.describe()}, seed {args.seed}, {device}")
    common = dict(batch_size=args.batch_size, seed=args.seed, device=device, num_classes=cfg.model.get("num_classes"))
    selection = model_selection(args.checkpoint)
    print(f"model selection of this checkpoint: {selection}")
    report = dict(config=args.config, checkpoint=args.checkpoint, model_selection=selection, n_examples=len(x),
                  seed=args.seed, device=device, threat=dict(norm=threat.norm, eps=threat.eps, alpha=threat.alpha),
                  surrogate=args.surrogate)
    out = args.out or os.path.dirname(os.path.abspath(args.checkpoint))
    stem = "eval_" + os.path.splitext(os.path.basename(args.checkpoint))[0]
    if args.checklist:
        results, checks = gradient_masking_checklist(model, x, y, threat, surrogate=surrogate,
                                                     square_queries=args.square_queries,
                                                     gap_threshold=args.gap_threshold, **common)
        report.update(results=results, checks=[c.as_dict() for c in checks])
        table = results_table(results) + "\n" + checks_markdown(checks)
        stem += "_checklist"
    else:
        results = evaluate(model, x, y, attacks, threat, adversary=adversary, nat_settings=nat_settings,
                           surrogate=surrogate, **common)
        report.update(results=results)
        table = results_table(results)
    atomic_write_text(json.dumps(report, indent=2), os.path.join(out, f"{stem}.json"))
    atomic_write_text(f"# {args.checkpoint}\n\nModel selection: {selection}.\n\n{table}", os.path.join(out, f"{stem}.md"))
    print("\n" + table + f"\nWrote {os.path.join(out, stem + '.json')} and .md")


if __name__ == "__main__":
    main()
