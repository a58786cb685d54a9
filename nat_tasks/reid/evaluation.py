"""The evaluation run behind ``tools/test_reid.py`` (and ``train_reid.py --eval-only``): every
checkpoint clean, under the config's metric and adaptive attacks (``test`` section) and in the
worst case per query of each budget, with n and 95 % intervals, paired differences of consecutive
rows and, with ``test.checklist``, the gradient-masking checks; one JSON + Markdown report. The
adaptive attack takes each model's nasty settings and adversary from its checkpoint (the config
it was trained with).

The clean features and attacked query batches go to ``<out>.state/`` as they are computed
(``runtime.eval_store``): a killed run, or one stopped by SIGTERM / SIGINT (one line, exit status
75), continues with ``resume`` and reports the numbers of an uninterrupted run. Under a launcher
(``cfg.launcher``, torchrun) each process computes its share of these pieces
(``distributed.PieceShare``: query batch ``b`` is process ``b % world``'s), then process 0 reads
them all back, ranks and writes the report: the numbers of one process."""
import hashlib
import os.path as osp

from nat_tasks.core.errors import NatError, on_fault
from nat_tasks.runtime import console, seed_everything
from nat_tasks.runtime.distributed import check_launch, process_group
from nat_tasks.runtime.eval_store import EvalStore, file_sha256, open_store

from .adversary import recorded_defence
from .attacks import build_attack
from .checklist import checklist_attacks, run_checks, transfer_attacks
from .config import METHODS
from .data import build_datamanager
from .distributed import PieceShare, process_device, quiet_unless_main
from .model import load_checkpoint_model, read_checkpoint
from .ranking import chance_scores
from .robustness import clean_features, evaluate_robustness, shared_pieces, write_report
from .worst_case import worst_case_columns


def evaluate(cfg, weights, out, resume=False):
    """Evaluate the checkpoints ``weights`` (one table row each); write ``<out>.json`` and
    ``<out>.md``; return ``[(name, results, rankings)]``. ``resume``: continue the evaluation
    state ``<out>.state/`` of an unfinished run with the same settings (``'auto'``: if there is
    one, ``runtime.eval_store.open_store``). Under ``cfg.launcher`` the processes share the work
    and process 0 alone prints, writes and returns the rows (the others: ``None``)."""
    launcher = cfg.get("launcher", "none")
    check_launch(launcher, cfg.device)
    with process_group(launcher), quiet_unless_main():
        return _evaluate(cfg, weights, out, resume, PieceShare.of_group())


def _evaluate(cfg, weights, out, resume, share):
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
    device = process_device(cfg)
    with console.library_output(out + ".log"):  # torchreid's data summary
        loaders = build_datamanager(cfg, use_gpu=device.type == "cuda").test_loader[cfg.data.sources]
    (q_pids, q_camids), (g_pids, g_camids) = _labels(loaders["query"]), _labels(loaders["gallery"])
    chance_map, chance_rank1 = chance_scores(q_pids, g_pids, q_camids, g_camids)
    surrogate = test.get("transfer_from") if test.checklist else None
    store = _open_store(out + ".state", _state_settings(cfg, weights, run, surrogate, loaders, device),
                        resume, share)
    if not share.alone:
        print(f"{share.world} processes: process r attacks the query batches b with b % "
              f"{share.world} == r; process 0 ranks and writes")
    saved_so_far = (f"the evaluation state {store.folder} holds every piece finished so far",
                    "rerun the same command with --resume")
    with store, on_fault(store.folder, lambda: saved_so_far):
        transfer = _transfer(cfg, surrogate, kinds, loaders["query"], device,
                             store, share) if surrogate else []
        rows, checks = [], []
        for i, path in enumerate(weights):
            net, meta = load_checkpoint_model(path, cfg.model.name)
            net = net.to(device)
            name = METHODS.get(meta.get("method"), osp.splitext(osp.basename(path))[0])
            print(f"evaluating {name}: {path}")
            defence = recorded_defence(net, meta) if any(a.adaptive for a in attacks) else None
            mine = run + ([] if surrogate and osp.samefile(path, surrogate) else transfer)
            results, rankings = evaluate_robustness(
                net, loaders["query"], loaders["gallery"], mine, device, seed=cfg.seed,
                defence=defence, worst_cases=worst, store=store.within(f"model{i}"), share=share)
            if not share.main:
                continue
            rows.append((name, results, rankings))
            checks.append(run_checks(results, mine, chance_map, kinds, test.eps[0], test.alpha,
                                     test.steps) if test.checklist else None)
    if not share.main:
        return None
    settings = {"dataset": cfg.data.sources, "root": cfg.data.root, "weights": list(weights),
                "input_size": [cfg.data.height, cfg.data.width], "seed": cfg.seed,
                "attacks": [a.settings() | {"budget": a.budget} for a in attacks],
                "checklist_attacks": [a.settings() | {"budget": a.budget} for a in extra],
                "transfer_from": surrogate or None,
                "step": f"{test.alpha * 255:g}/255", "guides": "query set",
                "protocol": "Market-1501 (same-identity same-camera gallery removed), squared L2",
                "chance": {"mAP": chance_map, "rank1": chance_rank1}}
    table = write_report(rows, attacks + worst, out, settings, checks)
    store.finish()
    print(table + f"written: {out}.json, {out}.md")
    return rows


def _open_store(folder, settings, resume, share):
    """``open_store`` by process 0 (it checks, clears and creates the folder), then shared; a
    refusal is every process's one line."""
    if share.alone:
        return open_store(folder, settings, resume=resume)
    store, refusal = None, None
    if share.main:
        try:
            store = open_store(folder, settings, resume=resume)
        except NatError as err:
            refusal = str(err)
    refusal = share.from_main(refusal)
    if refusal is not None:
        raise NatError(refusal)
    return store or EvalStore(folder, settings)


def _state_settings(cfg, weights, attacks, surrogate, loaders, device):
    """What makes two runs the same evaluation (``runtime.eval_store``): the checkpoints' bytes,
    the query and gallery lists (image paths, identities, cameras) and their batching, the input
    size, the attacks, the transfer surrogate, the seed and the device type."""
    checkpoints = [osp.abspath(p) for p in weights] + ([osp.abspath(surrogate)] if surrogate else [])
    return {"checkpoints": [[path, file_sha256(path)] for path in checkpoints],  # in row order
            "transfer_from": osp.abspath(surrogate) if surrogate else None,
            "query": _listing(loaders["query"]), "gallery": _listing(loaders["gallery"]),
            "query_batch_size": loaders["query"].batch_size,
            "input_size": [cfg.data.height, cfg.data.width], "seed": cfg.seed,
            "device": device.type, "attacks": [a.settings() for a in attacks]}


def _listing(loader):
    """A fingerprint of a test loader's images (paths, pids, camids, in order)."""
    return hashlib.sha256(repr([tuple(item[:3]) for item in loader.dataset.data]).encode()).hexdigest()


def _transfer(cfg, path, kinds, query_loader, device, store, share):
    """The checklist's transfer attacks crafted on the surrogate checkpoint ``path``."""
    surrogate, meta = load_checkpoint_model(path, cfg.model.name)
    surrogate = surrogate.to(device).eval()
    guides = shared_pieces(share, [lambda: clean_features(surrogate, query_loader, device, store,
                                                          "surrogate.clean_query")])[0][0]
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
