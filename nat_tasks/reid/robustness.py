"""mAP / Rank-1 of re-ID models, clean and under metric attacks on the query images, with the
number of ranked queries and 95 % bootstrap intervals over them.

Protocol (Table 12 of the paper): the model in eval mode; every query image is attacked (Linf,
[0, 1] pixels) with guides from the query set (its identity's query images, padded as in the
reference, see ``attacks``; FNA also pulls toward the mean query feature of the other identity
furthest from it); the gallery stays clean; retrieval and metrics by ``ranking.query_ranking``
(faiss, Market-1501 protocol). Intervals resample the per-query AP and Rank-1 hits; two models
are compared by a paired bootstrap of their per-query differences on the same queries.
``write_report`` writes Table 12 (Markdown) and every number (JSON) with ``runtime.write_results``.
"""
import numpy as np
import torch

from nat_tasks.core.sanity import checks_markdown
from nat_tasks.core.stats import bootstrap_interval, format_interval
from nat_tasks.runtime import markdown_table, write_results

from .ranking import extract_features, query_ranking

CLEAN = None  # the column key of clean scores among attacks


def attacked_query_features(net, query_loader, attack, guide_feats, guide_pids, device):
    """Features of every query image after ``attack`` (guides: the clean query features)."""
    guide_feats, guide_pids = guide_feats.to(device), torch.as_tensor(guide_pids, device=device)
    feats, start = [], 0
    for data in query_loader:
        x = data["img"].to(device)
        index = torch.arange(start, start + len(x), device=device)
        start += len(x)
        target = attack.target(guide_feats[index], guide_pids[index], guide_feats, guide_pids,
                               self_index=index)
        x_adv = attack(net.embed, x, target)
        with torch.no_grad():
            feats.append(net.embed(x_adv).float().cpu())
    return torch.cat(feats)


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


def evaluate_robustness(net, query_loader, gallery_loader, attacks, device, log=print):
    """``(results, rankings)``: ``results = {'clean': scores, '<kind>': {'<budget>': scores}}``
    (JSON-ready: mAP, rank1, cmc, n, intervals); ``rankings[attack or CLEAN]`` the per-query
    ``Ranking`` behind each score, for paired comparisons."""
    net.eval()
    qf, q_pids, q_camids = extract_features(net.embed, query_loader, device)
    gf, g_pids, g_camids = extract_features(net.embed, gallery_loader, device)
    rankings = {CLEAN: query_ranking(qf, gf, q_pids, g_pids, q_camids, g_camids)}
    results = {"clean": _scores(rankings[CLEAN])}
    log(f"clean: {_cell(results['clean'])}  (n = {results['clean']['n']} queries)")
    for attack in attacks:
        adv = attacked_query_features(net, query_loader, attack, qf, q_pids, device)
        rankings[attack] = query_ranking(adv, gf, q_pids, g_pids, q_camids, g_camids)
        scores = results.setdefault(attack.kind, {})[attack.budget] = _scores(rankings[attack])
        log(f"{attack.describe()}: {_cell(scores)}")
    return results, rankings


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
             f"{settings['step']}). Difference rows: each model minus the one above it, paired "
             "bootstrap over the same queries (points).\n\n"
             + robustness_table(rows, attacks, differences))
    for (name, *_), row_checks in zip(rows, checks):
        if row_checks:
            table += f"\nGradient-masking checks, {name}:\n\n" + checks_markdown(row_checks)
    write_results(stem, payload, table)
    return table
