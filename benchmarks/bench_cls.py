"""Classification benchmarks; prints one JSON object.

(a) NAT overhead: time of one NAT training step against two references, same model
    (PreActResNet-18, 32x32, batch B = 64, PGD-10), NAT's adversary also a PreActResNet-18:
    - standard PGD-AT (Madry et al.: trains on the B adversarial images): what the paper's Table 9
      and users compare with; NAT also trains on the B clean images, so this ratio includes that;
    - PGD-AT on X ∪ X' (``pgd_at`` with ``include_clean=True``, NAT's batch composition): isolates
      the nasty term's own cost (the adversary's forward). Target <= 1.06.
    A step is the method's loss, backward and an SGD update, as in training. One NAT run per
    adversary precision (``--adversary-precisions``: float32, the default, and bfloat16 autocast).
    Steps are interleaved (PGD-AT, PGD-AT on X ∪ X', NAT, NAT-bf16, PGD-AT, ...) so load changes hit
    all alike; each ratio is the median of the per-round ratios. The report names the CPU (lscpu's
    model name and its bf16/amx flags): bfloat16 is fast only where those exist.
(b) The embedded demo (``tools/train_cls.py`` without a config) as a subprocess: wall time and
    peak RSS (``getrusage(RUSAGE_CHILDREN).ru_maxrss``). Target <= 600 s and <= 3 GB on 2 CPU cores.

    python benchmarks/bench_cls.py [--repeats 5] [--batch-size 64] [--device cpu]
        [--adversary-precisions float32 bfloat16] [--skip-demo] [--skip-overhead]
"""
import argparse
import copy
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

import torch

from bench_common import cpu_info, interleaved_rounds  # benchmarks/ is the script folder: on sys.path
from nat_tasks.runtime import default_device

# Benchmark names -> FrozenAdversary(precision=...): float32 is the default (the caller's precision).
PRECISION = {"float32": None, "bfloat16": "bfloat16", "float16": "float16"}
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The two references of NAT's step (see the docstring).
REFERENCES = {"pgd_at": dict(type="pgd_at"), "pgd_at_x_xadv": dict(type="pgd_at", include_clean=True)}


def nat_overhead(repeats, batch_size, device, precisions, steps=10):
    from nat_tasks.cls import build_classifier, build_method
    from nat_tasks.core import FrozenAdversary, NastyLoss

    torch.manual_seed(0)
    attack = dict(eps=8 / 255, alpha=2 / 255, steps=steps)

    def setup(method_cfg, **nasty):
        torch.manual_seed(0)
        model = build_classifier("preact_resnet18", 10).to(device).train()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        return model, optimizer, build_method(method_cfg, **nasty)

    adversary_model = build_classifier("preact_resnet18", 10)
    runs = {name: setup(dict(method, **attack)) for name, method in REFERENCES.items()}
    for precision in precisions:  # the same frozen weights, run in each precision
        # A copy each: a reduced precision also changes the weights' memory layout.
        adversary = FrozenAdversary(copy.deepcopy(adversary_model), PRECISION[precision]).to(device)
        # NastyLoss(): NAT's default weight and tau
        runs[f"nat_{precision}"] = setup(dict(type="nat", **attack), adversary=adversary, nasty_loss=NastyLoss())
    x = torch.rand(batch_size, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (batch_size,), device=device)

    def step(model, optimizer, method):
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss = sum(v for k, v in method(model, x, y).items() if "loss" in k)
        loss.backward()
        optimizer.step()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter() - start

    with warnings.catch_warnings(record=True) as caught:  # warm-up; verifies reduced precision
        warnings.simplefilter("always")
        for run in runs.values():
            step(*run)
    fallbacks = sorted({str(w.message) for w in caught if "runs without autocast" in str(w.message)})
    times = interleaved_rounds(runs, lambda name: step(*runs[name]), repeats)
    report = dict(model="preact_resnet18", adversary="preact_resnet18", batch_size=batch_size,
                  pgd_steps=steps, device=device, threads=torch.get_num_threads(), repeats=repeats,
                  cpu=cpu_info(), reduced_precision_fallbacks=fallbacks,
                  **{f"{name}_step_s": round(statistics.median(times[name]), 3) for name in REFERENCES},
                  target_vs_pgd_at_x_xadv=1.06)
    for precision in precisions:
        nat_times = times[f"nat_{precision}"]
        entry = dict(nat_step_s=round(statistics.median(nat_times), 3))
        for name in REFERENCES:
            ratios = [n / r for n, r in zip(nat_times, times[name])]
            entry[f"vs_{name}"] = dict(ratio_median=round(statistics.median(ratios), 4),
                                       ratios=[round(r, 4) for r in ratios])
        report[f"nat_adversary_{precision}"] = entry
    return report


def demo_cost(device):
    with tempfile.TemporaryDirectory() as work_dir:
        env = dict(os.environ, MPLBACKEND="Agg")
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, os.path.join(REPO, "tools", "train_cls.py"), "--work-dir", work_dir,
                               "--device", device], cwd=REPO, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(f"the demo failed:\n{proc.stderr[-3000:]}")
        with open(os.path.join(work_dir, "results.json")) as f:
            results = json.load(f)
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux
    return dict(wall_s=round(seconds, 1), peak_rss_mb=round(peak_mb), target_s=600, target_rss_mb=3072,
                models={m["model"]: dict(clean=m["clean"], pgd20=m["pgd20"], aa=m["aa"], tail_mass=m["tail_mass"])
                        for m in results["models"]}, demo_seconds=results["seconds"])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default=default_device())
    parser.add_argument("--adversary-precisions", nargs="+", choices=PRECISION, default=["float32", "bfloat16"],
                        help="one NAT run per precision of the frozen adversary (its autocast dtype)")
    parser.add_argument("--skip-demo", action="store_true")
    parser.add_argument("--skip-overhead", action="store_true")
    args = parser.parse_args()
    report = {}
    if not args.skip_overhead:
        report["nat_overhead"] = nat_overhead(args.repeats, args.batch_size, args.device,
                                             args.adversary_precisions)
    if not args.skip_demo:
        report["demo"] = demo_cost(args.device)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
