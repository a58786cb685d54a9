"""Training-step cost of methods against their base; prints one JSON object.

Each row of ``ROWS`` times one training step of a method against a reference method on the same
model (PreActResNet-18 by default, CIFAR shape 32x32, batch B, Linf 8/255, step 2/255, PGD-10):
- ``at_awp``: AT-AWP (``pgd_at_awp``, gamma 0.01) / PGD-AT. The AWP paper reports ~8 % overhead.
- ``trades_awp``: TRADES-AWP (``trades_awp``, beta 6, gamma 5e-3) / TRADES (beta 6).
A step is what training does: the method's loss, backward and an SGD update (momentum 0.9, weight
decay 5e-4), AWP's removal of its perturbation included (an optimizer post-hook). Steps are
interleaved (every method once per round) so load changes hit all alike; each ratio is the median
of the per-round ratios. The report names the CPU (lscpu's model name and its bf16/amx flags).
Each step's process CPU time is reported too (``cpu_ratio_median``): with ``OMP_NUM_THREADS=1`` on
a CPU shared with other jobs it measures the work, which wall time (waiting for a core) blurs.

A row is ``name: Row(method, reference, context)``; ``context(model_factory, device)`` returns the
context objects both methods take (e.g. a frozen teacher), ``None`` for none.

    python benchmarks/bench_methods.py [--rows at_awp trades_awp] [--repeats 5] [--batch-size 64]
        [--model preact_resnet18] [--device cpu] [--threads N]
"""
import argparse
import json
import statistics
import time
from dataclasses import dataclass
from typing import Callable, Optional

import torch

from bench_common import cpu_info, interleaved_rounds  # benchmarks/ is the script folder: on sys.path
from nat_tasks.runtime import default_device

ATTACK = dict(eps=8 / 255, alpha=2 / 255, steps=10)


@dataclass
class Row:
    method: dict
    reference: dict
    context: Optional[Callable] = None
    note: str = ""


ROWS = {
    "at_awp": Row(dict(type="pgd_at_awp", gamma=0.01, **ATTACK), dict(type="pgd_at", **ATTACK),
                  note="AWP paper: ~8 % over AT"),
    "trades_awp": Row(dict(type="trades_awp", beta=6.0, gamma=5e-3, **ATTACK),
                      dict(type="trades", beta=6.0, **ATTACK)),
}


def measure(rows, repeats, batch_size, model_name, device):
    from nat_tasks.cls import build_classifier, build_method

    def new_model():
        torch.manual_seed(0)
        return build_classifier(model_name, 10).to(device)

    runs = {}  # "<row>/<method|reference>" -> (model, optimizer, method)
    for name in rows:
        row = ROWS[name]
        context = row.context(new_model, device) if row.context else {}
        for role in ("method", "reference"):
            model = new_model().train()
            optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
            runs[f"{name}/{role}"] = (model, optimizer, build_method(getattr(row, role), **context))
    x = torch.rand(batch_size, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (batch_size,), device=device)

    def step(model, optimizer, method):
        start, start_cpu = time.perf_counter(), time.process_time()
        optimizer.zero_grad(set_to_none=True)
        sum(v for k, v in method(model, x, y).items() if "loss" in k).backward()
        optimizer.step()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter() - start, time.process_time() - start_cpu

    for run in runs.values():  # warm-up (AWP builds its proxy copy here)
        step(*run)
    times = interleaved_rounds(runs, lambda key: step(*runs[key]), repeats,  # (wall s, CPU s) per round
                               seconds=lambda wall_and_cpu: wall_and_cpu[0])
    report = {}
    for name in rows:
        method, reference = times[f"{name}/method"], times[f"{name}/reference"]
        ratios = [m[0] / r[0] for m, r in zip(method, reference)]
        cpu_ratios = [m[1] / r[1] for m, r in zip(method, reference)]
        report[name] = dict(method=ROWS[name].method["type"], reference=ROWS[name].reference["type"],
                            method_step_s=round(statistics.median(m[0] for m in method), 3),
                            reference_step_s=round(statistics.median(r[0] for r in reference), 3),
                            ratio_median=round(statistics.median(ratios), 4),
                            ratios=[round(r, 4) for r in ratios],
                            cpu_ratio_median=round(statistics.median(cpu_ratios), 4),
                            cpu_ratios=[round(r, 4) for r in cpu_ratios], note=ROWS[name].note)
    return report


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", nargs="+", choices=ROWS, default=list(ROWS))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--model", default="preact_resnet18")
    parser.add_argument("--device", default=default_device())
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = measure(args.rows, args.repeats, args.batch_size, args.model, args.device)
    print(json.dumps(dict(model=args.model, batch_size=args.batch_size, pgd_steps=ATTACK["steps"],
                          device=args.device, threads=torch.get_num_threads(), repeats=args.repeats,
                          cpu=cpu_info(), rows=rows), indent=2))


if __name__ == "__main__":
    main()
