"""Market-1501 ranking metrics (CMC, mAP) with faiss retrieval.

``rank`` returns what torchreid's ``metrics.evaluate_rank`` returns on the squared Euclidean
distances of the same features (torchreid's ``compute_distance_matrix(metric='euclidean')``, which
is what faiss' ``IndexFlatL2`` computes): gallery entries with the query's identity *and* camera are
removed from its ranking, queries without a remaining correct match are skipped, and every other
gallery entry counts (distractors ``0`` are ordinary non-matches; junk ``-1`` images never reach
here because torchreid's Market-1501 loader drops them). CMC and AP are computed with the same
floating-point operations as torchreid, so the numbers agree bit for bit on the same ranking.

How, exactly and in bounded memory: faiss' exhaustive ``IndexFlatL2`` search (a range search
with an infinite radius: every gallery entry with its distance, in gallery order, no sorting)
runs on chunks of queries. Sorting each query's 15913 distances is what makes a full ranking
slow; AP and CMC only need the positions of the query's correct matches, which are counts: the
entries ordered before a match are those with a smaller distance, or the same distance and a
smaller gallery index (faiss' order of exact ties), minus the removed same-camera entries.
torchreid's unstable argsort may order an exact tie between a match and a non-match otherwise,
the only case where the two can differ (by one position of one match).
"""
import faiss
import numpy as np

from nat_tasks.core.errors import NatError

CHUNK_ELEMENTS = 1 << 23  # queries x gallery distances per faiss call: ~100 MB of results


def _features(x, what):
    x = x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)
    if x.ndim != 2:
        raise NatError(f"{what} must be a 2-D (num, dim) array, got shape {x.shape}")
    return np.ascontiguousarray(x, dtype=np.float32)


def _labels(x, n, what):
    x = x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)
    x = x.reshape(-1).astype(np.int64)
    if x.shape[0] != n:
        raise NatError(f"{what} has {x.shape[0]} entries for {n} features")
    return x


def _same_identity_index(g_pids):
    """``pid -> sorted gallery indices of that identity``."""
    order = np.argsort(g_pids, kind="stable")
    pids, starts = np.unique(g_pids[order], return_index=True)
    return dict(zip(pids.tolist(), np.split(order, starts[1:])))


def rank(qf, gf, q_pids, g_pids, q_camids, g_camids, ranks=(1, 5, 10)):
    """CMC and mAP of ``qf`` against ``gf`` (squared L2), Market-1501 protocol.

    Returns ``(cmc, mAP)``: ``cmc`` a float32 array with ``cmc[r - 1]`` = Rank-r accuracy for
    every ``r <= max(ranks)`` (clipped to the gallery size, as torchreid does), ``mAP`` a float.
    Equal to ``torchreid.reid.metrics.evaluate_rank(distmat, ..., max_rank=max(ranks))``.
    """
    qf, gf = _features(qf, "query features"), _features(gf, "gallery features")
    num_q, num_g = qf.shape[0], gf.shape[0]
    if num_q == 0 or num_g == 0:
        raise NatError(f"nothing to rank: {num_q} queries, {num_g} gallery entries")
    if qf.shape[1] != gf.shape[1]:
        raise NatError(f"query features are {qf.shape[1]}-d but gallery features {gf.shape[1]}-d")
    q_pids, q_camids = _labels(q_pids, num_q, "q_pids"), _labels(q_camids, num_q, "q_camids")
    g_pids, g_camids = _labels(g_pids, num_g, "g_pids"), _labels(g_camids, num_g, "g_camids")
    max_rank = min(max(ranks), num_g)
    by_identity = _same_identity_index(g_pids)
    empty = np.zeros(0, dtype=np.int64)

    index = faiss.IndexFlatL2(qf.shape[1])
    index.add(gf)
    first_hit, ap = [], []  # valid queries only, in query order (as torchreid appends them)
    chunk = max(1, CHUNK_ELEMENTS // num_g)
    for start in range(0, num_q, chunk):
        queries = np.arange(start, min(start + chunk, num_q))
        lims, dist, ids = index.range_search(qf[queries], np.inf)
        distances = np.empty((len(queries), num_g), dtype=np.float32)
        distances[np.repeat(np.arange(len(queries)), np.diff(lims).astype(np.int64)), ids] = dist
        for row, q in enumerate(queries):
            same = by_identity.get(int(q_pids[q]), empty)
            removed = g_camids[same] == q_camids[q]
            if removed.all():
                continue  # the identity is not in the gallery under another camera: skipped
            hit, score = _first_hit_and_ap(distances[row], same[~removed], same[removed],
                                           num_g - int(removed.sum()))
            first_hit.append(hit)
            ap.append(score)
    if not ap:
        raise NatError("no query identity appears in the gallery under another camera")

    # torchreid: int CMC rows -> float32, summed over queries, divided by the count (a float).
    cmc_rows = (np.array(first_hit)[:, None] <= np.arange(1, max_rank + 1)).astype(np.float32)
    cmc = cmc_rows.sum(0) / float(len(ap))
    return cmc, float(np.mean(ap))


def _first_hit_and_ap(row, matches, removed, num_kept):
    """Rank of the first correct match and AP of one query from its distance ``row``."""
    d = row[matches]
    before = (row < d[:, None]).sum(1)
    for i in np.flatnonzero((row == d[:, None]).sum(1) > 1):  # exact ties: gallery index decides
        before[i] += np.count_nonzero(row[:matches[i]] == d[i])
    if removed.size:
        d_removed = row[removed]
        before -= ((d_removed < d[:, None])
                   | ((d_removed == d[:, None]) & (removed < matches[:, None]))).sum(1)
    positions = np.sort(before + 1)  # 1-based positions in the query's filtered ranking
    # torchreid's AP: sum over the filtered ranking of (hits so far / position) at the hits,
    # zeros elsewhere; the same array and the same pairwise sum give the same bits.
    precision = np.zeros(num_kept, dtype=np.float64)
    precision[positions - 1] = np.arange(1, positions.size + 1) / positions.astype(np.float64)
    return positions[0], precision.sum() / positions.size
