"""The evaluation run behind ``tools/test_reid.py`` (and ``train_reid.py --eval-only``): every
checkpoint clean, under the config's metric and adaptive attacks (``test`` section) and in the
worst case per query of each budget, with n and 95 % intervals, paired differences of consecutive
rows and, with ``test.checklist``, the gradient-masking checks; one JSON + Markdown report. The
adaptive attack takes each model's nasty settings and adversary from its checkpoint (the config
it was trained with)."""
import os.path as osp

from nat_tasks.core.errors import NatError
from nat_tasks.runtime import console, resolve_device, seed_everything

from .adversary import recorded_defence
from .attacks import build_attack
from .checklist import checklist_attacks, run_checks, transfer_attacks
from .config import METHODS
from .data import build_datamanager
from .model import load_checkpoint_model, read_checkpoint
from .ranking import chance_scores, extract_features
from .robustness import evaluate_robustness, write_report
from .worst_case import worst_case_columns


def evaluate(cfg, weights, out):
    """Evaluate the checkpoints ``weights`` (one table row each); write ``<out>.json`` and
    ``<out>.md``; return ``[(name, results, rankings)]``."""
    test = cfg.test
    attacks = [build_attack(kind, eps=eps, alpha=test.alpha, steps=test.steps)
               for kind in test.attacks for eps in test.eps]
    worst = worst_case_columns(attacks)
    kinds = list(dict.fromkeys(a.kind for a in attacks if not a.adaptive))
    if test.checklist and not kinds:
        raise NatError("--checklist checks the metric attacks: pass --attack all (or fna / sma / "
                       "ifgsm)")
    extra = checklist_attacks(kinds, test.eps[0], test.alpha, test.steps) if test.checklist else []
    run = list(dict.fromkeys(attacks + extra))  # the table's attacks, then the checks' others
    seed_everything(cfg.seed)
    device = resolve_device(cfg.device)
    with console.library_output(out + ".log"):  # torchreid's data summary
        loaders = build_datamanager(cfg, use_gpu=device.type == "cuda").test_loader[cfg.data.sources]
    (q_pids, q_camids), (g_pids, g_camids) = _labels(loaders["query"]), _labels(loaders["gallery"])
    chance_map, chance_rank1 = chance_scores(q_pids, g_pids, q_camids, g_camids)
    surrogate = test.get("transfer_from") if test.checklist else None
    transfer = _transfer(cfg, surrogate, kinds, loaders["query"], device) if surrogate else []
    rows, checks = [], []
    for path in weights:
        net, meta = load_checkpoint_model(path, cfg.model.name)
        net = net.to(device)
        name = METHODS.get(meta.get("method"), osp.splitext(osp.basename(path))[0])
        print(f"evaluating {name}: {path}")
        defence = recorded_defence(net, meta) if any(a.adaptive for a in attacks) else None
        mine = run + ([] if surrogate and osp.samefile(path, surrogate) else transfer)
        results, rankings = evaluate_robustness(net, loaders["query"], loaders["gallery"], mine,
                                                device, seed=cfg.seed, defence=defence,
                                                worst_cases=worst)
        rows.append((name, results, rankings))
        checks.append(run_checks(results, mine, chance_map, kinds, test.eps[0], test.alpha,
                                 test.steps) if test.checklist else None)
    settings = {"dataset": cfg.data.sources, "root": cfg.data.root, "weights": list(weights),
                "input_size": [cfg.data.height, cfg.data.width], "seed": cfg.seed,
                "attacks": [a.settings() | {"budget": a.budget} for a in attacks],
                "checklist_attacks": [a.settings() | {"budget": a.budget} for a in extra],
                "transfer_from": surrogate or None,
                "step": f"{test.alpha * 255:g}/255", "guides": "query set",
                "protocol": "Market-1501 (same-identity same-camera gallery removed), squared L2",
                "chance": {"mAP": chance_map, "rank1": chance_rank1}}
    table = write_report(rows, attacks + worst, out, settings, checks)
    print(table + f"written: {out}.json, {out}.md")
    return rows


def _transfer(cfg, path, kinds, query_loader, device):
    """The checklist's transfer attacks crafted on the surrogate checkpoint ``path``."""
    surrogate, meta = load_checkpoint_model(path, cfg.model.name)
    surrogate = surrogate.to(device).eval()
    guides = extract_features(surrogate.embed, query_loader, device)[0]
    source = METHODS.get(meta.get("method"), osp.splitext(osp.basename(path))[0])
    test = cfg.test
    return transfer_attacks(kinds, test.eps[0], test.alpha, test.steps, surrogate, guides, source)


def _labels(loader):
    """``(pids, camids)`` of a torchreid test loader, in loader order."""
    data = loader.dataset.data
    return [item[1] for item in data], [item[2] for item in data]


def trained_size(path):
    """``{'data.height': h, 'data.width': w}`` recorded in one of our checkpoints (else ``{}``):
    models are evaluated at the size they were trained at, unless told otherwise."""
    meta = read_checkpoint(path)[1]
    return {f"data.{key}": meta[key] for key in ("height", "width") if key in meta}
