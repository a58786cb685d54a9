"""Robustness distillation's step against PGD-AT's (issue: "distillation step vs PGD-AT step");
prints one JSON object.

One training step (the method's loss, backward, an SGD update) of a ResNet-18 student (CIFAR stem,
32x32, batch B = 64) with a PGD-10 inner attack, for PGD-AT (no teacher) and for RSLAD, ARD and
IAD (after its warm-up: the costlier phase, one more teacher forward) distilling from a frozen
teacher (Table 10's WRN-34-10 by default; ``--teacher`` any architecture of ``build_classifier``).
Weights are random: the cost does not depend on them. Steps are interleaved (PGD-AT, RSLAD, ARD,
IAD, PGD-AT, ...) so load changes hit all alike; each ratio is the median of the per-round ratios
to that round's PGD-AT step. The report names the CPU (``bench_common.cpu_info``).

``--clock process`` times a step by the CPU time of this process (``time.process_time``, CPU
only) instead of wall time: on a machine shared with other jobs it counts the step's own work, not
the time other processes hold the cores (use it with ``--threads 1``: idle OpenMP threads that
spin would count too).

    python benchmarks/bench_distill.py [--repeats 5] [--batch-size 64] [--teacher wrn34_10]
        [--teacher-precision bfloat16] [--device cpu] [--threads N] [--clock wall|process]
"""
import argparse
import json
import statistics
import time

import torch

from bench_common import cpu_info, interleaved_rounds, ratios_to  # benchmarks/ is the script folder: on sys.path
from nat_tasks.runtime import default_device

ATTACK = dict(eps=8 / 255, alpha=2 / 255, steps=10)
# The settings of the Table 10 configs (configs/cls/cifar10_resnet18_*_from_at_teacher.py).
METHODS = {"pgd_at": dict(type="pgd_at"), "rslad": dict(type="rslad"),
           "ard": dict(type="ard", temperature=30.0), "iad": dict(type="iad", begin=0)}


CLOCKS = {"wall": time.perf_counter, "process": time.process_time}


def distillation_steps(repeats, batch_size, device, teacher_arch, teacher_precision, clock="wall"):
    from nat_tasks.cls import build_classifier, build_method
    from nat_tasks.cls.data.data import CIFAR10
    from nat_tasks.core import FrozenAdversary

    data = dict(mean=CIFAR10.mean, std=CIFAR10.std)
    torch.manual_seed(0)
    teacher = FrozenAdversary(build_classifier(teacher_arch, 10, **data), teacher_precision).to(device)

    def setup(cfg):
        torch.manual_seed(0)
        student = build_classifier("resnet18", 10, **data).to(device).train()
        optimizer = torch.optim.SGD(student.parameters(), lr=0.01, momentum=0.9)
        return student, optimizer, build_method(dict(cfg, **ATTACK), teacher=teacher, epoch_source=lambda: 0)

    runs = {name: setup(cfg) for name, cfg in METHODS.items()}
    x = torch.rand(batch_size, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (batch_size,), device=device)

    now = CLOCKS[clock]

    def step(student, optimizer, method):
        start = now()
        optimizer.zero_grad(set_to_none=True)
        sum(v for k, v in method(student, x, y).items() if "loss" in k).backward()
        optimizer.step()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return now() - start

    for run in runs.values():  # warm-up (allocator, oneDNN kernels, the teacher's precision check)
        step(*run)
    times = interleaved_rounds(runs, lambda name: step(*runs[name]), repeats)
    report = dict(student="resnet18", teacher=teacher_arch, teacher_precision=teacher_precision,
                  batch_size=batch_size, pgd_steps=ATTACK["steps"], device=device, clock=clock,
                  threads=torch.get_num_threads(), repeats=repeats, cpu=cpu_info(),
                  step_s={name: round(statistics.median(t), 3) for name, t in times.items()})
    report.update(ratios_to(times, "pgd_at"))
    return report


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--teacher", default="wrn34_10", help="the teacher's architecture (build_classifier name)")
    parser.add_argument("--teacher-precision", choices=["bfloat16", "float16"], default=None,
                        help="run the teacher under autocast (default: float32)")
    parser.add_argument("--device", default=default_device())
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--clock", choices=CLOCKS, default="wall", help="wall time or this process's CPU time")
    args = parser.parse_args()
    if args.clock == "process" and not args.device.startswith("cpu"):
        parser.error("--clock process measures CPU work: use it with --device cpu")
    if args.threads:
        torch.set_num_threads(args.threads)
    print(json.dumps(distillation_steps(args.repeats, args.batch_size, args.device, args.teacher,
                                        args.teacher_precision, args.clock), indent=2))


if __name__ == "__main__":
    main()
