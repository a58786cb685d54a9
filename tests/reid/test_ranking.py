"""``rank`` equals torchreid's ``evaluate_rank`` (Market-1501 protocol) on the same features."""
import itertools

import numpy as np
import pytest
import torch
from torchreid.reid import metrics

from nat_tasks.core.errors import NatError
from nat_tasks.reid.data import build_datamanager
from nat_tasks.reid.ranking import chance_scores, query_ranking, rank


def reference(qf, gf, q_pids, g_pids, q_camids, g_camids, max_rank):
    distmat = metrics.compute_distance_matrix(torch.as_tensor(qf), torch.as_tensor(gf)).numpy()
    return metrics.evaluate_rank(distmat, np.asarray(q_pids), np.asarray(g_pids),
                                 np.asarray(q_camids), np.asarray(g_camids), max_rank=max_rank)


def identity_features(pids, dim, rng, noise=1.0):
    centres = np.random.default_rng(123).standard_normal((pids.max() + 2, dim)).astype(np.float32)
    return centres[pids + 1] + noise * rng.standard_normal((len(pids), dim)).astype(np.float32)


def test_equals_torchreid_with_camera_filtering_and_distractors():
    rng = np.random.default_rng(0)
    q_pids, g_pids = rng.integers(1, 60, 200), rng.integers(0, 60, 1500)  # 0: distractors
    q_camids, g_camids = rng.integers(0, 6, 200), rng.integers(0, 6, 1500)
    # Query 0's identity appears in the gallery only under its own camera: it must be skipped.
    q_pids[0], q_camids[0] = 99, 2
    g_pids[:3], g_camids[:3] = 99, 2
    qf, gf = identity_features(q_pids, 32, rng, 1.3), identity_features(g_pids, 32, rng, 1.3)

    cmc, mAP = rank(qf, gf, q_pids, g_pids, q_camids, g_camids, ranks=(1, 5, 10, 20))
    ref_cmc, ref_mAP = reference(qf, gf, q_pids, g_pids, q_camids, g_camids, max_rank=20)
    assert mAP == ref_mAP  # bit for bit
    np.testing.assert_array_equal(cmc, ref_cmc)
    assert 0.2 < mAP < 0.95 and cmc[0] < 1  # a ranking with real errors, not a trivial one


def test_hard_queries_beyond_the_first_neighbours():
    """Correct matches ranked far down the gallery are still found exactly."""
    rng = np.random.default_rng(1)
    q_pids, g_pids = rng.integers(1, 20, 50), rng.integers(1, 20, 3000)
    q_camids, g_camids = np.zeros(50, int), np.ones(3000, int)
    qf, gf = identity_features(q_pids, 16, rng, 4.0), identity_features(g_pids, 16, rng, 4.0)
    cmc, mAP = rank(qf, gf, q_pids, g_pids, q_camids, g_camids)
    ref_cmc, ref_mAP = reference(qf, gf, q_pids, g_pids, q_camids, g_camids, max_rank=10)
    assert mAP == ref_mAP
    np.testing.assert_array_equal(cmc, ref_cmc)


def test_on_a_market_tree_read_by_torchreid(market_cfg):
    """Junk (-1) images never reach the ranking: torchreid's Market loader drops them."""
    dm = build_datamanager(market_cfg)
    query, gallery = dm.test_loader["market1501"]["query"], dm.test_loader["market1501"]["gallery"]
    q_pids = np.array([p for _, p, _, _ in query.dataset.data])
    g_pids = np.array([p for _, p, _, _ in gallery.dataset.data])
    q_camids = np.array([c for _, _, c, _ in query.dataset.data])
    g_camids = np.array([c for _, _, c, _ in gallery.dataset.data])
    assert (g_pids == 0).any() and not (g_pids == -1).any()
    rng = np.random.default_rng(2)
    qf, gf = identity_features(q_pids, 8, rng, 1.5), identity_features(g_pids, 8, rng, 1.5)
    cmc, mAP = rank(qf, gf, q_pids, g_pids, q_camids, g_camids)
    ref_cmc, ref_mAP = reference(qf, gf, q_pids, g_pids, q_camids, g_camids, max_rank=10)
    assert mAP == ref_mAP
    np.testing.assert_array_equal(cmc, ref_cmc)


@pytest.mark.parametrize("seed", range(3))
def test_exact_ties_are_ordered_as_torchreid_orders_them(seed, monkeypatch):
    """Features on a coarse integer grid: most distances tie exactly (matches with non-matches,
    with removed same-camera entries and with each other), plus duplicated gallery images under
    other identities and junk (-1) entries; torchreid's argsort decides such ties, and so must we."""
    rng = np.random.default_rng(seed)
    q_pids, g_pids = rng.integers(1, 8, 60), rng.integers(-1, 8, 400)
    q_camids, g_camids = rng.integers(0, 3, 60), rng.integers(0, 3, 400)
    qf = rng.integers(0, 3, (60, 3)).astype(np.float32)
    gf = rng.integers(0, 3, (400, 3)).astype(np.float32)
    gf[200:260] = gf[:60]  # the same image again, under another identity or camera
    monkeypatch.setattr("nat_tasks.reid.ranking.CHUNK_ELEMENTS", 400 * 7)  # chunks of queries
    cmc, mAP = rank(qf, gf, q_pids, g_pids, q_camids, g_camids, ranks=(1, 5, 10, 50))
    ref_cmc, ref_mAP = reference(qf, gf, q_pids, g_pids, q_camids, g_camids, max_rank=50)
    assert mAP == ref_mAP
    np.testing.assert_array_equal(cmc, ref_cmc)
    # the same data with ties broken by a tiny offset per gallery entry ranks otherwise: the test
    # depends on the tie order
    jittered = gf + np.linspace(0, 1e-3, 400, dtype=np.float32)[::-1, None]
    assert rank(qf, jittered, q_pids, g_pids, q_camids, g_camids, ranks=(1, 5, 10, 50))[1] != mAP


def test_ties_among_matches_and_removed_entries():
    """Copies of gallery images under the same identity (another camera or the query's): ties
    that cannot move a match, ranked without the argsort fallback, still torchreid's numbers."""
    rng = np.random.default_rng(5)
    q_pids, g_pids = rng.integers(1, 20, 80), rng.integers(0, 20, 600)
    q_camids, g_camids = rng.integers(0, 3, 80), rng.integers(0, 3, 600)
    qf, gf = identity_features(q_pids, 16, rng, 1.5), identity_features(g_pids, 16, rng, 1.5)
    gf[300:], g_pids[300:] = gf[:300], g_pids[:300]
    g_camids[300:] = rng.integers(0, 3, 300)
    cmc, mAP = rank(qf, gf, q_pids, g_pids, q_camids, g_camids, ranks=(1, 5, 10, 50))
    ref_cmc, ref_mAP = reference(qf, gf, q_pids, g_pids, q_camids, g_camids, max_rank=50)
    assert mAP == ref_mAP
    np.testing.assert_array_equal(cmc, ref_cmc)


@pytest.mark.parametrize("threads, starts", [(1, [0, 6, 12, 18, 24]), (3, [0, 5, 10, 15, 20, 25])])
def test_distances_in_chunks_are_torchreids_matrix(threads, starts, monkeypatch):
    """Chunks of queries of nearly equal size (no short last one; at least two per thread) hold
    torchreid's distances, each row against the right query norm (integer features: exact in any
    summation order), with one worker thread or several sharing the reused buffers; torch's
    thread count is restored."""
    import nat_tasks.reid.ranking as ranking

    rng = np.random.default_rng(4)
    qf = rng.integers(0, 5, (30, 64)).astype(np.float32)
    gf = rng.integers(0, 5, (200, 64)).astype(np.float32)
    monkeypatch.setattr(ranking, "CHUNK_ELEMENTS", 7 * 200)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        chunks = [(start, d.copy()) for start, d in
                  ranking._distance_chunks(torch.from_numpy(qf), torch.from_numpy(gf))]
        assert torch.get_num_threads() == threads
    finally:
        torch.set_num_threads(before)
    assert [start for start, _ in chunks] == starts
    ours = np.concatenate([d for _, d in chunks])
    np.testing.assert_array_equal(ours, metrics.compute_distance_matrix(torch.from_numpy(qf),
                                                                        torch.from_numpy(gf)).numpy())


def test_a_failure_mid_ranking_restores_torchs_threads(monkeypatch):
    """The distance workers run one torch thread each: an error while ranking a chunk must not
    leave the process at one thread (the caller may keep the traceback alive)."""
    import nat_tasks.reid.ranking as ranking

    def broken(*args):
        raise ValueError("ranking failed")

    monkeypatch.setattr(ranking, "_match_positions", broken)
    monkeypatch.setattr(ranking, "CHUNK_ELEMENTS", 10 * 50)
    rng = np.random.default_rng(6)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with pytest.raises(ValueError, match="ranking failed") as failure:
            rank(rng.random((30, 4), np.float32), rng.random((50, 4), np.float32), [1] * 30,
                 [1] * 50, [0] * 30, [1] * 50)
        assert failure.traceback and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_bad_inputs_are_one_line_errors():
    qf, gf = np.zeros((3, 4), np.float32), np.zeros((5, 8), np.float32)
    with pytest.raises(NatError, match="4-d but gallery features 8-d"):
        rank(qf, gf, [1, 2, 3], [1] * 5, [0] * 3, [1] * 5)
    with pytest.raises(NatError, match="no query identity appears"):
        rank(qf, np.zeros((5, 4), np.float32), [1, 2, 3], [7] * 5, [0] * 3, [1] * 5)
    with pytest.raises(NatError, match="must be finite"):
        rank(np.full((3, 4), np.nan, np.float32), np.zeros((5, 4), np.float32), [1, 2, 3], [1] * 5,
             [0] * 3, [1] * 5)


def test_per_query_values_are_torchreids_one_query_at_a_time():
    """The per-query AP / first hit behind the bootstrap intervals: each equals torchreid's
    evaluate_rank on that query alone, and their means are the reported mAP / Rank-1."""
    rng = np.random.default_rng(3)
    q_pids, g_pids = rng.integers(1, 15, 40), rng.integers(0, 15, 300)
    q_camids, g_camids = rng.integers(0, 3, 40), rng.integers(0, 3, 300)
    qf, gf = identity_features(q_pids, 8, rng, 1.5), identity_features(g_pids, 8, rng, 1.5)
    result = query_ranking(qf, gf, q_pids, g_pids, q_camids, g_camids)
    assert result.mAP == np.mean(result.ap) and result.cmc[0] == np.float32(result.rank1_hits.mean())
    assert 0 < len(result.query_index) <= 40 and 0 < result.rank1_hits.mean() < 1
    for q, ap, hit in zip(result.query_index, result.ap, result.first_hit):
        cmc, mAP = reference(qf[q:q + 1], gf, q_pids[q:q + 1], g_pids, q_camids[q:q + 1], g_camids,
                             max_rank=len(gf))
        assert ap == pytest.approx(mAP, abs=1e-12) and hit == 1 + np.argmax(cmc)


def test_chance_scores_are_the_mean_over_every_ordering():
    """Expected AP / Rank-1 of a random ranking against all 6! orderings of a small gallery."""
    # query 0 (pid 1, camera 0): 2 matches under camera 1, 1 removed under camera 0, 4 others;
    # query 1 (pid 2, camera 1): its only gallery image is under camera 1: skipped.
    g_pids, g_camids = np.array([1, 1, 1, 3, 3, 0, 2]), np.array([1, 1, 0, 0, 1, 1, 1])
    q_pids, q_camids = np.array([1, 2]), np.array([0, 1])
    kept = np.array([1, 1, 0, 0, 0, 0])  # the six entries query 0 ranks: matches first
    aps, hits = [], []
    for order in itertools.permutations(range(6)):
        relevant = kept[list(order)]
        positions = np.flatnonzero(relevant) + 1
        aps.append(np.mean(np.arange(1, len(positions) + 1) / positions))
        hits.append(relevant[0])
    chance_map, chance_rank1 = chance_scores(q_pids, g_pids, q_camids, g_camids)
    assert chance_map == pytest.approx(np.mean(aps)) and chance_rank1 == pytest.approx(np.mean(hits))
