"""Evaluate a classification checkpoint under attacks, RobustBench rules (eval mode, fixed seeds,
[0, 1] inputs, each attack's settings printed with its result).

    python tools/eval_cls.py CONFIG CHECKPOINT [--attacks clean,pgd20,aa] [--n-examples N]
                             [--batch-size B] [--device cpu|cuda] [--out DIR] [--eps E --alpha A]

Attacks: clean, fgsm, pgd<k>, cw, cw<k>, aa, apgd-ce-<k>, apgd-dlr-<k>, square, nat-adaptive[<k>].
Writes <out>/eval_<checkpoint name>.json and .md (default out: the checkpoint's folder).
"""
import argparse
import json
import os
import sys

os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")

from mmengine.config import DictAction  # noqa: E402

from nat_tasks.core.errors import NatError, cli_entry  # noqa: E402


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config")
    parser.add_argument("checkpoint", help="a trainer checkpoint (epoch_N.pth, best_*.pth) or a plain state_dict")
    parser.add_argument("--attacks", default="clean,pgd20,aa", help="comma-separated (default clean,pgd20,aa)")
    parser.add_argument("--n-examples", type=int,
                        help="N test examples, a fixed random subset (default: the whole test split)")
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


@cli_entry
def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    import torch

    import nat_tasks.cls  # noqa: F401  registers the data sets
    from nat_tasks.cls.classifier import DATA_INFO_KEYS, build_adversary, classifier_from_config
    from nat_tasks.cls.evaluation import ThreatModel, evaluate, markdown_table, parse_attack
    from nat_tasks.cls.train import load_config
    from nat_tasks.core.checkpoint import atomic_write_text
    from nat_tasks.core.pixel import default_device

    cfg = load_config(args.config, data_root=args.data_root, cfg_options=args.cfg_options)
    attacks = [a for a in args.attacks.split(",") if a.strip()]
    specs = [parse_attack(a) for a in attacks]  # fail on a typo before any work
    val_attack = cfg.model.get("val_attack", {})
    eps = args.eps if args.eps is not None else val_attack.get("eps")
    alpha = args.alpha if args.alpha is not None else val_attack.get("alpha")
    if eps is None or alpha is None:
        raise NatError("no threat model: pass --eps and --alpha (the config has no model.val_attack)")
    threat = ThreatModel(eps=float(eps), alpha=float(alpha))
    adversary = nat_settings = None
    if any(s.kind == "nat-adaptive" for s in specs):
        method = cfg.model.get("method", {})
        if method.get("type") != "nat" or not cfg.model.get("adversary"):
            raise NatError("nat-adaptive needs a NAT config (model.method.type='nat' and model.adversary)")
        info = {k: cfg.model[k] for k in DATA_INFO_KEYS if k in cfg.model}
        adversary = build_adversary(cfg.model.adversary, info)
        nat_settings = dict(w=method.get("w", 0.006), tau=method.get("tau", 4.0),
                            scale_by_tau2=method.get("scale_by_tau2", True))
    device = args.device or default_device()
    if device == "cuda" and not torch.cuda.is_available():
        raise NatError("--device cuda but no CUDA device is available")
    model = classifier_from_config(cfg.model, args.checkpoint)
    x, y = load_examples(cfg.test_dataloader.dataset if cfg.get("test_dataloader") else cfg.val_dataloader.dataset,
                         args.n_examples)
    print(f"evaluating {args.checkpoint} on {len(x)} test examples, {threat.describe()}, seed {args.seed}, {device}")
    results = evaluate(model, x, y, attacks, threat, batch_size=args.batch_size, seed=args.seed, device=device,
                       num_classes=cfg.model.get("num_classes"), adversary=adversary, nat_settings=nat_settings)
    report = dict(config=args.config, checkpoint=args.checkpoint, n_examples=len(x), seed=args.seed, device=device,
                  threat=dict(norm=threat.norm, eps=threat.eps, alpha=threat.alpha), results=results)
    out = args.out or os.path.dirname(os.path.abspath(args.checkpoint))
    stem = os.path.splitext(os.path.basename(args.checkpoint))[0]
    table = markdown_table(results, [("attack", "attack"), ("accuracy", "accuracy (%)"), ("n", "n"),
                                     ("settings", "settings")])
    atomic_write_text(json.dumps(report, indent=2), os.path.join(out, f"eval_{stem}.json"))
    atomic_write_text(f"# {args.checkpoint}\n\n{table}", os.path.join(out, f"eval_{stem}.md"))
    print("\n" + table + f"\nWrote {os.path.join(out, f'eval_{stem}.json')} and .md")


if __name__ == "__main__":
    main()
