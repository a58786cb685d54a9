"""Market-1501 ranking metrics (CMC, mAP) and the features they rank.

``rank`` returns what torchreid's ``metrics.evaluate_rank`` returns on torchreid's
``compute_distance_matrix(metric='euclidean')`` of the same features, bit for bit: gallery entries
with the query's identity *and* camera are removed from its ranking, queries without a remaining
correct match are skipped, and every other gallery entry counts (distractors ``0`` are ordinary
non-matches; junk ``-1`` images never reach here because torchreid's Market-1501 loader drops
them). ``query_ranking`` also keeps the per-query AP and first-hit positions (what the 95 %
intervals resample); ``chance_scores`` is the expected mAP / Rank-1 of a random ranking
(``--checklist``); ``clean_ranking`` is the engine's test during training (torchreid's ``_evaluate``).

How, exactly and in bounded memory:

- Distances are torchreid's ``euclidean_squared_distance`` (squared norms added, then one
  ``addmm_``) on chunks of queries written into reused buffers: the same torch operations give
  the same float32 bits as torchreid's full matrix, with one BLAS thread or several (checked at
  Market-1501 size; BLAS may in principle block a chunk otherwise than the whole). Another
  library's distances (faiss') differ in the last bits, so a near-tie could rank otherwise. The
  products run in worker threads while the calling thread ranks the finished chunks.
- Sorting each query's whole gallery is what makes torchreid slow; AP and CMC only need the
  positions of the query's correct matches among the kept entries: the count of kept entries
  with a smaller distance (only entries up to the farthest match are sorted). An exact tie
  between a match and a kept non-match is ordered by ``np.argsort`` of the row, torchreid's own
  (unstable) order; ties with other matches or removed entries do not move a match's position.
- AP is then summed as torchreid sums it (the float64 precisions over the whole filtered
  ranking, zeros at non-matches, one pairwise sum), so it has the same bits too.
"""
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass

import numpy as np
import torch

from nat_tasks.core.errors import NatError

CHUNK_ELEMENTS = 1 << 23  # queries x gallery distances per chunk: two 32 MB float32 buffers


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
    if not (np.isfinite(qf).all() and np.isfinite(gf).all()):
        raise NatError("features must be finite (a NaN or an infinity has no rank)")
    protocol = _protocol(q_pids, g_pids, q_camids, g_camids, num_q, num_g)
    max_rank = min(max(ranks), num_g)

    valid, first_hit, ap = [], [], []  # valid queries only, in query order (as torchreid appends)
    # closed on any exit: its workers finish and torch's thread count is restored at once
    with closing(_distance_chunks(torch.from_numpy(qf), torch.from_numpy(gf))) as chunks:
        for start, distances in chunks:
            for row, q in enumerate(range(start, start + len(distances))):
                if protocol[q] is None:
                    continue  # the identity is not in the gallery under another camera: skipped
                matches, removed = protocol[q]
                positions = _match_positions(distances[row], matches, removed)
                valid.append(q)
                first_hit.append(positions[0])
                ap.append(_average_precision(positions, num_g - removed.size))

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


def _distance_chunks(qf, gf):
    """``(first query, its chunk of torchreid's distance matrix)`` in query order: torchreid's
    ``euclidean_squared_distance`` (row norms of the whole inputs, as it computes them, then
    ``addmm_``) a chunk of queries at a time, as a numpy view of a reused float32 buffer, valid
    until the caller asks for the next chunk.

    Worker threads (as many as torch's thread count, one torch thread each) compute the next
    chunks while the caller ranks this one: independent one-thread products keep every core busy
    without the waits of one product split over the cores (torch releases the GIL). At most one
    buffer more than workers: (threads + 1) x ``CHUNK_ELEMENTS`` floats. Close the generator when
    done early: torch runs one thread until then."""
    num_q, num_g = qf.shape[0], gf.shape[0]
    q_norms = torch.pow(qf, 2).sum(dim=1, keepdim=True)
    g_norms = torch.pow(gf, 2).sum(dim=1, keepdim=True).t()
    # chunks of (nearly) equal size: MKL multiplies a few rows with other kernels, whose bits
    # differ, so a short last chunk could rank otherwise; at least two per thread, so every
    # core has a product to compute
    threads = torch.get_num_threads()
    num_chunks = min(num_q, max(-(-num_q * num_g // CHUNK_ELEMENTS), 2 * threads))
    bounds = np.linspace(0, num_q, num_chunks + 1).round().astype(int).tolist()
    workers = min(threads, num_chunks)
    rows = max(b - a for a, b in zip(bounds, bounds[1:]))
    buffers = [torch.empty(rows, num_g) for _ in range(min(workers + 1, num_chunks))]

    def compute(i):
        start, stop = bounds[i], bounds[i + 1]
        out = buffers[i % len(buffers)][:stop - start]
        torch.add(q_norms[start:stop].expand(-1, num_g), g_norms.expand(stop - start, -1), out=out)
        out.addmm_(qf[start:stop], gf.t(), beta=1, alpha=-2)
        return start, out.numpy()

    torch.set_num_threads(1)  # process-wide (MKL's setting is global): restored below
    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            pending = deque(pool.submit(compute, i) for i in range(workers))
            for i in range(num_chunks):
                chunk = pending.popleft().result()
                if i + workers < num_chunks:  # into the buffer of the chunk the caller is done with
                    pending.append(pool.submit(compute, i + workers))
                yield chunk
    finally:
        torch.set_num_threads(threads)


def _match_positions(row, matches, removed):
    """Sorted 1-based positions of the correct matches ``matches`` in one query's ranking of the
    kept gallery (``removed``: the entries its protocol drops), as torchreid's argsort ranks them."""
    d = np.sort(row[matches])
    # only entries up to the farthest match can precede one (np.compress: a few times faster
    # than indexing with the mask)
    nearer = np.sort(np.compress(row <= d[-1], row))
    below, upto = np.searchsorted(nearer, d, "left"), np.searchsorted(nearer, d, "right")
    d_removed = row[removed]
    removed_below = np.searchsorted(np.sort(d_removed), d, "left")
    if (upto - below == 1).all():
        return below - removed_below + 1  # no exact ties: only each match has its distance
    tied = upto - below - (d_removed == d[:, None]).sum(1)
    if (tied > (d == d[:, None]).sum(1)).any():
        return _positions_by_argsort(row, matches, removed)  # a match ties with a kept non-match
    # within a tie of matches (and removed entries) the matches take the consecutive positions
    same = np.searchsorted(d, d, "left")
    return below - removed_below + (np.arange(d.size) - same) + 1


def _positions_by_argsort(row, matches, removed):
    """Torchreid's way: the whole row by ``np.argsort`` (its order of exact ties), then the
    kept entries' match flags."""
    order = np.argsort(row)
    keep = np.ones(row.size, dtype=bool)
    keep[removed] = False
    is_match = np.zeros(row.size, dtype=bool)
    is_match[matches] = True
    return np.flatnonzero(is_match[order][keep[order]]) + 1


def _average_precision(positions, num_kept):
    """Torchreid's AP: over the filtered ranking, (hits so far / position) at the hits and zeros
    elsewhere, summed pairwise over the whole array (the same array gives the same bits), divided
    by the number of hits."""
    precision = np.zeros(num_kept, dtype=np.float64)
    precision[positions - 1] = np.arange(1, positions.size + 1) / positions.astype(np.float64)
    return precision.sum() / positions.size
