"""Market-1501 ranking metrics (CMC, mAP) with faiss retrieval, and the features they rank.

``rank`` returns what torchreid's ``metrics.evaluate_rank`` returns on the squared Euclidean
distances of the same features (torchreid's ``compute_distance_matrix(metric='euclidean')``, which
is what faiss' ``IndexFlatL2`` computes): gallery entries with the query's identity *and* camera are
removed from its ranking, queries without a remaining correct match are skipped, and every other
gallery entry counts (distractors ``0`` are ordinary non-matches; junk ``-1`` images never reach
here because torchreid's Market-1501 loader drops them). CMC and AP are computed with the same
floating-point operations as torchreid, so the numbers agree bit for bit on the same ranking.
``query_ranking`` also keeps the per-query AP and first-hit positions (what the 95 % intervals
resample); ``chance_scores`` is the expected mAP / Rank-1 of a random ranking (``--checklist``);
``clean_ranking`` is the engine's test during training (torchreid's ``_evaluate``, on faiss).

How, exactly and in bounded memory: faiss' exhaustive ``IndexFlatL2`` search (a range search
with an infinite radius: every gallery entry with its distance, in gallery order, no sorting)
runs on chunks of queries; its distances are read straight into one reused float32 buffer
(``_exhaustive_distances``). Sorting each query's 15913 distances is what makes a full ranking
slow; AP and CMC only need the positions of the query's correct matches, which are counts: the
entries ordered before a match are those with a smaller distance, or the same distance and a
smaller gallery index (faiss' order of exact ties), minus the removed same-camera entries.
torchreid's unstable argsort may order an exact tie between a match and a non-match otherwise,
the only case where the two can differ (by one position of one match).
"""
from dataclasses import dataclass

import faiss
import numpy as np
import torch

from nat_tasks.core.errors import NatError

CHUNK_ELEMENTS = 1 << 23  # queries x gallery distances per faiss call: ~100 MB of results


@torch.no_grad()
def extract_features(embed, loader, device):
    """``(features on CPU, pids, camids)`` of a torchreid test loader, in loader order."""
    feats, pids, camids = [], [], []
    for data in loader:
        feats.append(embed(data["img"].to(device)).float().cpu())
        pids.append(data["pid"].reshape(-1))
        camids.append(data["camid"].reshape(-1))
    return torch.cat(feats), torch.cat(pids).numpy(), torch.cat(camids).numpy()


def clean_ranking(embed, query_loader, gallery_loader, device, ranks=(1, 5, 10),
                  normalize_feature=False):
    """``(cmc, mAP)`` of ``embed``'s features of a query and a gallery loader (``rank``)."""
    qf, q_pids, q_camids = extract_features(embed, query_loader, device)
    gf, g_pids, g_camids = extract_features(embed, gallery_loader, device)
    if normalize_feature:
        qf, gf = torch.nn.functional.normalize(qf, dim=1), torch.nn.functional.normalize(gf, dim=1)
    return rank(qf, gf, q_pids, g_pids, q_camids, g_camids, ranks=ranks)


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


@dataclass(frozen=True)
class Ranking:
    """Ranking metrics and their per-query values (valid queries only, in query order).

    ``cmc[r - 1]`` = Rank-r accuracy, ``mAP`` the mean of ``ap``; ``first_hit`` is the 1-based
    position of each query's first correct match, so ``first_hit == 1`` are its Rank-1 hits.
    """
    cmc: np.ndarray
    mAP: float
    query_index: np.ndarray
    ap: np.ndarray
    first_hit: np.ndarray

    @property
    def rank1_hits(self):
        return (self.first_hit == 1).astype(np.float64)

    @classmethod
    def of_queries(cls, query_index, ap, first_hit, max_rank):
        """The ranking of these per-query values; CMC as torchreid's: int rows -> float32, summed
        over queries, divided by the count (a float)."""
        ap, first_hit = np.asarray(ap), np.asarray(first_hit)
        cmc_rows = (first_hit[:, None] <= np.arange(1, max_rank + 1)).astype(np.float32)
        return cls(cmc_rows.sum(0) / float(len(ap)), float(np.mean(ap)), np.asarray(query_index),
                   ap, first_hit)


def rank(qf, gf, q_pids, g_pids, q_camids, g_camids, ranks=(1, 5, 10)):
    """CMC and mAP of ``qf`` against ``gf`` (squared L2), Market-1501 protocol.

    Returns ``(cmc, mAP)``: ``cmc`` a float32 array with ``cmc[r - 1]`` = Rank-r accuracy for
    every ``r <= max(ranks)`` (clipped to the gallery size, as torchreid does), ``mAP`` a float.
    Equal to ``torchreid.reid.metrics.evaluate_rank(distmat, ..., max_rank=max(ranks))``.
    """
    result = query_ranking(qf, gf, q_pids, g_pids, q_camids, g_camids, ranks)
    return result.cmc, result.mAP


def _protocol(q_pids, g_pids, q_camids, g_camids, num_q, num_g):
    """Per query, ``(kept matches, removed same-camera entries)`` of the gallery, or ``None``
    for a query the protocol skips (its identity is not in the gallery under another camera)."""
    q_pids, q_camids = _labels(q_pids, num_q, "q_pids"), _labels(q_camids, num_q, "q_camids")
    g_pids, g_camids = _labels(g_pids, num_g, "g_pids"), _labels(g_camids, num_g, "g_camids")
    by_identity = _same_identity_index(g_pids)
    empty = np.zeros(0, dtype=np.int64)
    queries = []
    for q in range(num_q):
        same = by_identity.get(int(q_pids[q]), empty)
        removed = g_camids[same] == q_camids[q]
        queries.append(None if removed.all() else (same[~removed], same[removed]))
    if all(m is None for m in queries):
        raise NatError("no query identity appears in the gallery under another camera")
    return queries


def query_ranking(qf, gf, q_pids, g_pids, q_camids, g_camids, ranks=(1, 5, 10)):
    """``rank`` with the per-query AP and first-hit positions behind it (a ``Ranking``)."""
    qf, gf = _features(qf, "query features"), _features(gf, "gallery features")
    num_q, num_g = qf.shape[0], gf.shape[0]
    if num_q == 0 or num_g == 0:
        raise NatError(f"nothing to rank: {num_q} queries, {num_g} gallery entries")
    if qf.shape[1] != gf.shape[1]:
        raise NatError(f"query features are {qf.shape[1]}-d but gallery features {gf.shape[1]}-d")
    protocol = _protocol(q_pids, g_pids, q_camids, g_camids, num_q, num_g)
    max_rank = min(max(ranks), num_g)

    index = faiss.IndexFlatL2(qf.shape[1])
    index.add(gf)
    valid, first_hit, ap = [], [], []  # valid queries only, in query order (as torchreid appends)
    chunk = max(1, CHUNK_ELEMENTS // num_g)
    buffer = np.empty((min(chunk, num_q), num_g), dtype=np.float32)
    for start in range(0, num_q, chunk):
        stop = min(start + chunk, num_q)
        distances = _exhaustive_distances(index, qf[start:stop], buffer[:stop - start])
        for row, q in enumerate(range(start, stop)):
            if protocol[q] is None:
                continue  # the identity is not in the gallery under another camera: skipped
            matches, removed = protocol[q]
            hit, score = _first_hit_and_ap(distances[row], matches, removed, num_g - removed.size)
            valid.append(q)
            first_hit.append(hit)
            ap.append(score)

    return Ranking.of_queries(valid, ap, first_hit, max_rank)


def chance_scores(q_pids, g_pids, q_camids, g_camids):
    """``(mAP, Rank-1)`` of a uniformly random ranking, in expectation, on the same protocol.

    For a query with ``R`` correct matches among ``N`` kept gallery entries the expected AP is
    ``(H_N + (R - 1) (N - H_N) / (N - 1)) / N`` (``H_N`` the N-th harmonic number: position ``i``
    is a match with probability ``R / N``, and then holds ``1 + (i - 1)(R - 1)/(N - 1)`` matches
    in expectation), and the expected Rank-1 hit ``R / N``.
    """
    num_q, num_g = len(np.asarray(q_pids).reshape(-1)), len(np.asarray(g_pids).reshape(-1))
    ap, hit = [], []
    for query in _protocol(q_pids, g_pids, q_camids, g_camids, num_q, num_g):
        if query is None:
            continue
        r, n = query[0].size, num_g - query[1].size
        harmonic = np.sum(1.0 / np.arange(1, n + 1))
        ap.append(1.0 if n == 1 else (harmonic + (r - 1) * (n - harmonic) / (n - 1)) / n)
        hit.append(r / n)
    return float(np.mean(ap)), float(np.mean(hit))


def _exhaustive_distances(index, queries, out):
    """``out[i, j]``: the squared distance of query ``i`` to gallery entry ``j`` from ``index``'s
    range search with an infinite radius, read from faiss' result without the copies of its Python
    wrapper (which returns ids too, for a scatter)."""
    num_q, num_g = out.shape
    result = faiss.RangeSearchResult(num_q)
    index.range_search_c(num_q, faiss.swig_ptr(queries), float("inf"), result)
    lims = faiss.rev_swig_ptr(result.lims, num_q + 1)
    if lims[-1] != num_q * num_g:
        raise NatError(f"faiss returned {int(lims[-1])} of {num_q * num_g} distances: are the "
                       "features finite?")
    dist = faiss.rev_swig_ptr(result.distances, num_q * num_g).reshape(num_q, num_g)
    ids = faiss.rev_swig_ptr(result.labels, num_q * num_g).reshape(num_q, num_g)
    if (ids == np.arange(num_g)).all():  # in gallery order: one copy
        out[...] = dist
    else:
        out[np.arange(num_q)[:, None], ids] = dist
    return out


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
