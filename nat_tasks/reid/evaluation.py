"""The evaluation run behind ``tools/test_reid.py`` (and ``train_reid.py --eval-only``): every
checkpoint clean and under the config's metric attacks (``test`` section), with n and 95 %
intervals, paired differences of consecutive rows and, with ``test.checklist``, the
gradient-masking checks; one JSON + Markdown report."""
import os.path as osp

from nat_tasks.core.errors import NatError
from nat_tasks.runtime import resolve_device, seed_everything

from .attacks import build_attack
from .checklist import checklist_attacks, run_checks
from .config import METHODS
from .data import build_datamanager
from .model import load_checkpoint_model, read_checkpoint
from .ranking import chance_scores
from .robustness import evaluate_robustness, write_report


def evaluate(cfg, weights, out):
    """Evaluate the checkpoints ``weights`` (one table row each); write ``<out>.json`` and
    ``<out>.md``; return ``[(name, results, rankings)]``."""
    test = cfg.test
    attacks = [build_attack(kind, eps=eps, alpha=test.alpha, steps=test.steps)
               for kind in test.attacks for eps in test.eps]
    kinds = list(dict.fromkeys(a.kind for a in attacks))
    if test.checklist and not kinds:
        raise NatError("--checklist checks attacks: pass --attack all (or fna / sma / ifgsm)")
    extra = checklist_attacks(kinds, test.eps[0], test.alpha, test.steps) if test.checklist else []
    run = list(dict.fromkeys(attacks + extra))  # the table's attacks, then the checks' others
    seed_everything(cfg.seed)
    device = resolve_device(cfg.device)
    loaders = build_datamanager(cfg, use_gpu=device.type == "cuda").test_loader[cfg.data.sources]
    (q_pids, q_camids), (g_pids, g_camids) = _labels(loaders["query"]), _labels(loaders["gallery"])
    chance_map, chance_rank1 = chance_scores(q_pids, g_pids, q_camids, g_camids)
    rows, checks = [], []
    for path in weights:
        net, meta = load_checkpoint_model(path, cfg.model.name)
        net = net.to(device)
        name = METHODS.get(meta.get("method"), osp.splitext(osp.basename(path))[0])
        print(f"evaluating {name}: {path}")
        results, rankings = evaluate_robustness(net, loaders["query"], loaders["gallery"], run,
                                                device)
        rows.append((name, results, rankings))
        checks.append(run_checks(results, run, chance_map, kinds, test.steps)
                      if test.checklist else None)
    settings = {"dataset": cfg.data.sources, "root": cfg.data.root, "weights": list(weights),
                "input_size": [cfg.data.height, cfg.data.width],
                "attacks": [a.settings() | {"budget": a.budget} for a in attacks],
                "checklist_attacks": [a.settings() | {"budget": a.budget} for a in extra],
                "step": f"{test.alpha * 255:g}/255", "guides": "query set",
                "protocol": "Market-1501 (same-identity same-camera gallery removed), faiss",
                "chance": {"mAP": chance_map, "rank1": chance_rank1}}
    table = write_report(rows, attacks, out, settings, checks)
    print(table + f"written: {out}.json, {out}.md")
    return rows


def _labels(loader):
    """``(pids, camids)`` of a torchreid test loader, in loader order."""
    data = loader.dataset.data
    return [item[1] for item in data], [item[2] for item in data]


def trained_size(path):
    """``{'data.height': h, 'data.width': w}`` recorded in one of our checkpoints (else ``{}``):
    models are evaluated at the size they were trained at, unless told otherwise."""
    meta = read_checkpoint(path)[1]
    return {f"data.{key}": meta[key] for key in ("height", "width") if key in meta}
