"""Re-ID speed targets, each measured as a ratio in one run.

1. ``rank`` vs torchreid's ``compute_distance_matrix`` + ``evaluate_rank`` on the same
   Market-sized features (3368 queries x 15913 gallery, 2048-d; identities with per-image noise,
   distractors, 6 cameras): the median of the per-round time ratios of interleaved rounds (target
   >= 20x), identical CMC/mAP, peak memory of a process that only runs ``rank``. The ratio of CPU
   times (every thread of the process) is printed too: on a machine shared with other jobs the
   wall-clock ratio depends on how many cores each side gets (``rank`` runs several threads,
   torchreid's ranking one).
2. One AMD&NAT training step / one AMD step, same model, batch and attack (target <= 1.10), for
   each precision of the frozen adversary (float32, the default, and bfloat16 autocast). Engines
   run interleaved; the figure is the median of the per-round ratios.

    python benchmarks/bench_reid.py [--part rank|step|all] [--rank-rounds 3] [--model resnet50]
        [--adversary-precisions float32 bfloat16] [--repeats 8]
"""
import argparse
import copy
import multiprocessing as mp
import os
import resource
import statistics
import time
import types
import warnings

import numpy as np
import torch

from bench_common import cpu_info, interleaved_rounds, ratios_to  # benchmarks/: on sys.path
from nat_tasks.runtime import default_device, setup_tool, tool_main

# Benchmark names -> FrozenAdversary(precision=...): float32 is the default (the caller's precision).
PRECISION = {"float32": None, "bfloat16": "bfloat16", "float16": "float16"}


def market_like_features(num_q=3368, num_g=15913, dim=2048, ids=750, seed=0):
    """Identity centres plus per-image noise of varying strength (some images are hard)."""
    rng = np.random.default_rng(seed)
    distractors = num_g * 2798 // 15913  # Market-1501's share of distractors
    centres = rng.standard_normal((ids + 1, dim), dtype=np.float32)
    q_pids = rng.integers(1, ids + 1, num_q)
    g_pids = np.concatenate([rng.integers(1, ids + 1, num_g - distractors), np.zeros(distractors, int)])

    def sample(pids):
        noise = rng.standard_normal((len(pids), dim), dtype=np.float32)
        strength = rng.uniform(0.6, 1.6, (len(pids), 1)).astype(np.float32)
        feats = centres[pids] + strength * noise
        distractor = pids == 0
        feats[distractor] = 1.2 * rng.standard_normal((distractor.sum(), dim), dtype=np.float32)
        return np.maximum(feats, 0)  # ReLU-pooled features are non-negative

    return (sample(q_pids), sample(g_pids), q_pids, g_pids,
            rng.integers(0, 6, num_q), rng.integers(0, 6, num_g))


def _rank_child(queue, sizes):
    setup_tool()  # a spawned process: tool_main's set-up ran in the parent only
    from nat_tasks.reid.ranking import rank

    data = market_like_features(*sizes)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start, cpu = time.perf_counter(), time.process_time()
    cmc, mAP = rank(*data, ranks=(1, 5, 10, 20, 50))
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    queue.put((seconds, cmc, mAP, rss_before, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
               cpu))


def _ours_in_a_child(sizes):
    """``rank`` in a fresh process (its peak RSS is ``rank``'s own): ``(seconds, cmc, mAP, RSS
    before, peak RSS, CPU seconds)``."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    child = ctx.Process(target=_rank_child, args=(queue, sizes))
    child.start()
    result = queue.get()
    child.join()
    return result


def _torchreid(data):
    from torchreid.reid import metrics

    qf, gf, q_pids, g_pids, q_camids, g_camids = data
    start, cpu = time.perf_counter(), time.process_time()
    distmat = metrics.compute_distance_matrix(torch.from_numpy(qf), torch.from_numpy(gf)).numpy()
    cmc, mAP = metrics.evaluate_rank(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=50)
    return time.perf_counter() - start, cmc, mAP, time.process_time() - cpu


def bench_rank(sizes, rounds):
    data = market_like_features(*sizes)
    run = {"torchreid": lambda: _torchreid(data), "ours": lambda: _ours_in_a_child(sizes)}
    results = interleaved_rounds(list(run), lambda name: run[name](), rounds,
                                 seconds=lambda result: result[0])
    times = {name: [r[0] for r in series] for name, series in results.items()}
    speedup = ratios_to(times, "ours")["torchreid_vs_ours"]
    cpu = {name: [r[-1] for r in series] for name, series in results.items()}
    cpu_speedup = ratios_to(cpu, "ours")["torchreid_vs_ours"]
    print(f"rank: {sizes[0]} x {sizes[1]} x {sizes[2]}-d, {rounds} interleaved rounds, "
          f"{torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f} at the end")
    print(f"  torchreid compute_distance_matrix + evaluate_rank: median "
          f"{statistics.median(times['torchreid']):.1f} s")
    print(f"  nat_tasks.reid.ranking.rank: median {statistics.median(times['ours']):.2f} s -> "
          f"{speedup['ratio_median']:.1f}x faster (rounds: {' '.join(map(str, speedup['ratios']))})")
    print(f"  CPU time: torchreid median {statistics.median(cpu['torchreid']):.1f} s, ours "
          f"{statistics.median(cpu['ours']):.2f} s -> {cpu_speedup['ratio_median']:.1f}x less "
          f"(rounds: {' '.join(map(str, cpu_speedup['ratios']))})")
    identical = all(np.array_equal(o[1], t[1]) and o[2] == t[2]
                    for o, t in zip(results["ours"], results["torchreid"]))
    _, cmc, mAP, rss_before, rss_peak, _ = results["ours"][-1]
    _, ref_cmc, ref_mAP, _ = results["torchreid"][-1]
    print(f"  mAP {mAP:.6f} vs {ref_mAP:.6f} (|diff| {abs(mAP - ref_mAP):.2e}); CMC max |diff| "
          f"{np.abs(cmc - ref_cmc).max():.2e}; identical in every round: {identical}; "
          f"Rank-1 {cmc[0]:.4f}")
    print(f"  peak RSS of the rank process: {rss_peak / 2**20:.2f} GB "
          f"(features + imports before rank: {rss_before / 2**20:.2f} GB)")


def bench_step(opts):
    from nat_tasks.core.adversary import FrozenAdversary
    from nat_tasks.core.nasty import NastyLoss
    from nat_tasks.reid.attacks import build_attack
    from nat_tasks.reid.engine import AdversarialTripletEngine
    from nat_tasks.reid.model import IdLogits, build_reid_model

    batches = types.SimpleNamespace(num_train_pids=opts.ids, train_loader=None, test_loader=None)
    pids = torch.arange(opts.ids).repeat_interleave(opts.batch_size // opts.ids)
    data = {"img": torch.rand(len(pids), 3, opts.height, opts.width), "pid": pids}
    attack = build_attack("ifgsm", eps=8 / 255, alpha=2 / 255, steps=opts.steps)
    adversary_net = IdLogits(build_reid_model(opts.model, opts.ids))  # one set of frozen weights
    variants = {"AMD": None, **{f"AMD&NAT ({p})": p for p in opts.adversary_precisions}}
    engines = {}
    for name, precision in variants.items():
        torch.manual_seed(0)  # the same initial target in every engine
        model = build_reid_model(opts.model, opts.ids).to(opts.device)
        nat = name != "AMD"
        # A copy each: a reduced precision also changes the weights' memory layout.
        adversary = FrozenAdversary(copy.deepcopy(adversary_net), PRECISION[precision]).to(
            opts.device) if nat else None
        optimizer = torch.optim.Adam(model.parameters(), lr=3e-4)
        engines[name] = AdversarialTripletEngine(batches, model, optimizer, device=opts.device,
                                                 train_attack=attack, adversary=adversary,
                                                 nasty=NastyLoss() if nat else None)
    times = {name: [] for name in engines}
    for repeat in range(opts.repeats + 1):  # interleaved, so a change of machine load hits all
        for name, engine in engines.items():
            start = time.perf_counter()
            with warnings.catch_warnings(record=True) as caught:  # the first round verifies bf16
                warnings.simplefilter("always")
                engine.forward_backward(data)
            for w in caught:
                if "runs without autocast" in str(w.message):
                    print(f"  {name}: {w.message}")
            if opts.device.startswith("cuda"):
                torch.cuda.synchronize()
            if repeat:  # the first round warms up
                times[name].append(time.perf_counter() - start)
    print(f"step: {opts.model} {opts.height}x{opts.width}, batch {len(pids)} "
          f"(+{len(pids)} adversarial), AMD attack {opts.steps} steps, {opts.repeats} rounds, "
          f"{torch.get_num_threads()} threads")
    print(f"  AMD: median {statistics.median(times['AMD']):.2f} s")
    for name in list(engines)[1:]:
        ratios = [n / a for n, a in zip(times[name], times["AMD"])]
        print(f"  {name}: median {statistics.median(times[name]):.2f} s -> ratio to AMD: median "
              f"{statistics.median(ratios):.3f} (rounds: {' '.join(f'{r:.3f}' for r in ratios)})")


@tool_main
def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--part", choices=("rank", "step", "all"), default="all")
    p.add_argument("--queries", type=int, default=3368)
    p.add_argument("--gallery", type=int, default=15913)
    p.add_argument("--dim", type=int, default=2048)
    p.add_argument("--rank-rounds", type=int, default=3, help="interleaved rounds of --part rank")
    p.add_argument("--model", default="resnet50")
    p.add_argument("--height", type=int, default=128)
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--ids", type=int, default=4)
    p.add_argument("--steps", type=int, default=10, help="AMD attack steps")
    p.add_argument("--repeats", type=int, default=8)
    p.add_argument("--adversary-precisions", nargs="+", choices=PRECISION,
                   default=["float32", "bfloat16"], help="one AMD&NAT engine per adversary precision")
    p.add_argument("--device", default=default_device())
    opts = p.parse_args()
    print(f"CPU: {cpu_info()}")
    if opts.part in ("rank", "all"):
        bench_rank((opts.queries, opts.gallery, opts.dim), opts.rank_rounds)
    if opts.part in ("step", "all"):
        bench_step(opts)


if __name__ == "__main__":
    main()
