"""mAP / Rank-1 of re-ID models, clean, under metric attacks on the query images and in the worst
case per query, with the number of ranked queries and 95 % bootstrap intervals over them.

Protocol (Table 12 of the paper): the model in eval mode; every query image is attacked (Linf,
[0, 1] pixels) with guides from the query set (its identity's query images, padded as in the
reference, see ``attacks``; FNA also pulls toward the mean query feature of the other identity
furthest from it); the gallery stays clean; retrieval and metrics by ``ranking.query_ranking``
(Market-1501 protocol). Before an attack runs on query batch ``b``, torch is seeded with
``runtime.seeding.batch_seed(seed, b)``, as classification does: a batch's numbers depend on the
seed, its index and its images only, not on which attacks, models or batches ran before, so a
batch attacked alone (a resumed run, another process) gives what one run gives. Every attacked
batch is checked against the budget and the [0, 1] box before it is counted. The adaptive attack
runs on each model's ``Defence`` (``attacks.NatAdaptive``); the worst case per query is
``worst_case``. With an ``EvalStore`` (``runtime.eval_store``: ``tools/test_reid.py --resume``)
the clean features and every attacked query batch are saved as they are computed and read back
by a resumed run, which then ranks exactly what an uninterrupted run ranks; under a launcher
(``distributed.PieceShare``) the processes compute their shares of the pieces and process 0 ranks
them all, again as one run. Intervals resample the per-query AP and Rank-1 hits; two models are compared by a
paired bootstrap of their per-query differences on the same queries. ``write_report`` writes
Table 12 (Markdown) and every number (JSON) with ``runtime.write_results``.
"""
import numpy as np
import torch

from nat_tasks.core.sanity import checks_markdown
from nat_tasks.core.stats import bootstrap_interval, format_interval
from nat_tasks.runtime import markdown_table, write_results
from nat_tasks.runtime.eval_store import EvalStore
from nat_tasks.runtime.seeding import batch_seed

from .distributed import ALONE
from .ranking import extract_features, query_ranking
from .worst_case import worst_ranking

CLEAN = None  # the column key of clean scores among attacks
TOLERANCE = 1e-5  # of the budget and box checks, in [0, 1] pixels


def attacked_query_features(net, query_loader, attack, guide_feats, guide_pids, device, seed=0,
                            store=EvalStore(), share=ALONE):
    """Features of every query image after ``attack``, batch ``b`` seeded ``batch_seed(seed, b)``
    (guides: the clean query features of the model the attack is crafted on); each batch is a
    piece of ``store``, so a batch an earlier run finished is read back, not attacked again.
    Sharded (``share`` of several processes): only this process's batches, saved; ``None``."""
    guide_feats, guide_pids = guide_feats.to(device), torch.as_tensor(guide_pids, device=device)
    feats, start, column = [], 0, _column_key(attack)
    for b, data in enumerate(query_loader):
        x = data["img"]
        index = torch.arange(start, start + len(x), device=device)
        start += len(x)
        if not share.mine(b):
            continue
        feats.append(store.cached(f"{column}.batch{b}", lambda: attack_batch(
            net, attack, x.to(device), index, guide_feats, guide_pids, batch_seed(seed, b))))
        store.stop_point(f"after query batch {b + 1} of {len(query_loader)} under "
                         f"{attack.describe()}")
    return torch.cat(feats) if share.alone else None


def _column_key(attack):
    """A file-name-safe key of an attack column: kind, eps, step and steps."""
    return f"{attack.kind}_eps{attack.eps * 255:g}_step{attack.alpha * 255:g}_{attack.steps}"


def clean_features(net, loader, device, store=EvalStore(), key="clean"):
    """``extract_features`` of ``loader`` as a piece of ``store`` (features, pids, camids)."""
    saved = store.cached(key, lambda: dict(zip(("feats", "pids", "camids"), map(
        torch.as_tensor, extract_features(net.embed, loader, device)))))
    return saved["feats"], saved["pids"].numpy(), saved["camids"].numpy()


def shared_pieces(share, computes):
    """The values of ``computes`` (each reads or computes and saves one store piece): sharded,
    piece ``n`` is computed by its process, then every process reads every piece back."""
    if share.alone:
        return [compute() for compute in computes]
    for n, compute in enumerate(computes):
        if share.mine(n):
            compute()
    share.sync()
    return [compute() for compute in computes]  # all saved: read back


def attack_batch(net, attack, x, index, guide_feats, guide_pids, seed):
    """``net``'s features (CPU) of the query batch ``x`` (positions ``index`` among the guides)
    after ``attack``, drawn from ``torch.manual_seed(seed)``; a transfer attack crafts on its
    surrogate."""
    torch.manual_seed(seed)
    target = attack.target(guide_feats[index], guide_pids[index], guide_feats, guide_pids,
                           self_index=index)
    x_adv = attack((attack.surrogate or net).embed, x, target)
    if (x_adv - x).abs().max() > attack.eps + TOLERANCE or x_adv.min() < -TOLERANCE \
            or x_adv.max() > 1 + TOLERANCE:
        raise RuntimeError(f"{attack.describe()} left the threat model: refusing to rank it")
    with torch.no_grad():
        return net.embed(x_adv).float().cpu()


def _with_interval(values):
    """``(mean, [low, high])`` of per-query values: the 95 % bootstrap interval of the mean."""
    values = np.asarray(values, dtype=np.float64)
    return float(values.mean()), list(bootstrap_interval(values))


def _scores(ranking):
    """mAP, Rank-1, CMC (fractions, as torchreid), n and 95 % intervals over the queries."""
    _, map_ci = _with_interval(ranking.ap)
    _, rank1_ci = _with_interval(ranking.rank1_hits)
    return {"mAP": ranking.mAP, "rank1": float(ranking.cmc[0]), "n": len(ranking.ap),
            "mAP_ci": map_ci, "rank1_ci": rank1_ci,
            "cmc": {str(r): float(ranking.cmc[r - 1]) for r in (1, 5, 10) if r <= len(ranking.cmc)}}


def column(results, attack):
    """The scores of one column (``CLEAN`` or a ``MetricAttack``) in a results dict."""
    return results["clean"] if attack is CLEAN else results[attack.kind][attack.budget]


def evaluate_robustness(net, query_loader, gallery_loader, attacks, device, *, seed=0,
                        defence=None, worst_cases=(), log=print, store=EvalStore(), share=ALONE):
    """``(results, rankings)``: ``results = {'clean': scores, '<kind>': {'<budget>': scores}}``
    (JSON-ready: mAP, rank1, cmc, n, intervals; the worst cases under ``'worst'``);
    ``rankings[attack or CLEAN or worst case]`` the per-query ``Ranking`` behind each score, for
    paired comparisons. ``defence``: the model's ``attacks.Defence`` for the adaptive attacks
    (``None``: no nasty term, an adaptive attack is then its base); ``worst_cases``:
    ``worst_case.WorstCase`` columns over attacks in ``attacks``; ``store``: where the clean
    features and attacked batches of this model are kept (``runtime.eval_store``). Sharded
    (``share`` of several processes, a store on disk): each process computes its pieces, then
    process 0 reads every piece back and ranks as one process; the others return ``(None, None)``."""
    net.eval()
    if not share.alone:
        _compute_share(net, query_loader, gallery_loader, attacks, device, seed, defence, store,
                       share)
        if not share.main:
            return None, None
    qf, q_pids, q_camids = clean_features(net, query_loader, device, store, "clean_query")
    gf, g_pids, g_camids = clean_features(net, gallery_loader, device, store, "clean_gallery")
    store.stop_point("after the clean features")
    rankings = {CLEAN: query_ranking(qf, gf, q_pids, g_pids, q_camids, g_camids)}
    results = {"clean": _scores(rankings[CLEAN])}
    log(f"clean: {_cell(results['clean'])}  (n = {results['clean']['n']} queries)")
    for attack in attacks:
        runner = attack.against(defence)
        if runner is not attack and runner in rankings:
            rankings[attack] = rankings[runner]  # the same attack, seeded the same: no rerun
        else:
            adv = attacked_query_features(net, query_loader, runner, _guides(attack, qf), q_pids,
                                          device, seed, store)
            rankings[attack] = query_ranking(adv, gf, q_pids, g_pids, q_camids, g_camids)
        _record(results, attack, rankings[attack], log)
    for worst in worst_cases:
        rankings[worst] = worst_ranking([rankings[CLEAN]] + [rankings[a] for a in worst.attacks])
        _record(results, worst, rankings[worst], log)
    return results, rankings


def _compute_share(net, query_loader, gallery_loader, attacks, device, seed, defence, store, share):
    """This process's pieces of ``evaluate_robustness``: its clean feature set, then its query
    batches of every attack (with every process's clean query features as guides); returns when
    every process has saved its pieces."""
    (qf, q_pids, _), _ = shared_pieces(share, [
        lambda: clean_features(net, query_loader, device, store, "clean_query"),
        lambda: clean_features(net, gallery_loader, device, store, "clean_gallery")])
    store.stop_point("after the clean features")
    for attack in attacks:  # a runner shared by two columns: its batches are read back the second time
        attacked_query_features(net, query_loader, attack.against(defence), _guides(attack, qf),
                                q_pids, device, seed, store, share)
    share.sync()


def _guides(attack, qf):
    """The clean query features ``attack`` takes its guides from: the model's, or its surrogate's."""
    return qf if attack.surrogate is None else attack.guide_features


def _record(results, column, ranking, log):
    scores = results.setdefault(column.kind, {})[column.budget] = _scores(ranking)
    log(f"{column.describe()}: {_cell(scores)}")


def paired_difference(before, after):
    """``after - before`` on the same queries: mAP and Rank-1 differences with paired-bootstrap
    95 % intervals of the mean per-query difference."""
    if not np.array_equal(before.query_index, after.query_index):
        raise ValueError("a paired comparison needs the same ranked queries")
    map_diff, map_ci = _with_interval(after.ap - before.ap)
    rank1_diff, rank1_ci = _with_interval(after.rank1_hits - before.rank1_hits)
    return {"mAP": map_diff, "mAP_ci": map_ci, "rank1": rank1_diff, "rank1_ci": rank1_ci,
            "n": len(after.ap)}


def consecutive_differences(rows, attacks):
    """Every model minus the one listed before it, per column: ``[(name, results)]`` in the
    layout of ``evaluate_robustness``'s results."""
    differences = []
    for (name_a, _, rankings_a), (name_b, _, rankings_b) in zip(rows, rows[1:]):
        results = {}
        for attack in [CLEAN] + list(attacks):
            diff = paired_difference(rankings_a[attack], rankings_b[attack])
            if attack is CLEAN:
                results["clean"] = diff
            else:
                results.setdefault(attack.kind, {})[attack.budget] = diff
        differences.append((f"{name_b} - {name_a}", results))
    return differences


def _cell(scores):
    """``mAP [low, high] / Rank-1 [low, high]`` in %."""
    return " / ".join(format_interval(*(100 * np.array([scores[k], *scores[k + "_ci"]])))
                      for k in ("mAP", "rank1"))


def robustness_table(rows, attacks, differences=()):
    """Table 12's layout: one row per model, ``mAP / Rank-1`` in % with 95 % intervals per
    column, then the paired differences (points)."""
    columns = [CLEAN] + list(attacks)
    headers = [("name", "Defense")] + [(i, "Clean" if a is CLEAN else a.describe())
                                       for i, a in enumerate(columns)]
    lines = [(name, results) for name, results, *_ in rows] + [
        (f"{name} (paired)", results) for name, results in differences]
    return markdown_table([{"name": name, **{i: _cell(column(results, a))
                                             for i, a in enumerate(columns)}}
                           for name, results in lines], headers)


def write_report(rows, attacks, stem, settings, checks=None):
    """``<stem>.json`` (every number, the settings, the checks) and ``<stem>.md`` (the tables).

    ``rows``: ``[(name, results, rankings)]``; ``checks``: one list of ``Check`` per row (the
    checklist) or ``None``. Returns the Markdown.
    """
    differences = consecutive_differences(rows, attacks)
    checks = checks or [None] * len(rows)
    payload = {"settings": settings,
               "models": [{"name": name, "results": results}
                          | ({"checks": [c.as_dict() for c in row_checks]} if row_checks else {})
                          for (name, results, _), row_checks in zip(rows, checks)],
               "differences": [{"name": name, "results": results} for name, results in differences]}
    n = rows[0][1]["clean"]["n"]
    table = ("mAP / Rank-1 (%) with 95 % bootstrap intervals over the n = "
             f"{n} ranked queries; metric attacks on the query images (Linf, [0, 1] pixels, step "
             f"{settings['step']}). Worst case: per query the lowest AP over clean and the "
             "budget's attacks, a Rank-1 hit only if it hits under every one. NAT-adaptive: the "
             "attack plus the nasty term through the model's adversary; on a model without a "
             "nasty term it is the attack itself. Difference rows: each model minus the one "
             "above it, paired bootstrap over the same queries (points).\n\n"
             + robustness_table(rows, attacks, differences))
    for (name, *_), row_checks in zip(rows, checks):
        if row_checks:
            table += f"\nGradient-masking checks, {name}:\n\n" + checks_markdown(row_checks)
    write_results(stem, payload, table)
    return table
