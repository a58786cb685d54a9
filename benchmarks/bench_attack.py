"""PGD-20 evaluation throughput: ours vs torchattacks' PGD on the same model and batch.

Both sides craft Linf PGD-20 examples (eps 8/255, step 2/255, random start) against the same
eval-mode model on the same CIFAR-sized random batch, then classify them (what an evaluation
does). Repetitions are interleaved in alternating order, so drifts in machine load hit both
sides alike. Prints JSON with the median images/s of each and ``ratio`` = ours / torchattacks
(target: >= 1.0).

    python benchmarks/bench_attack.py --device cuda --batch-size 64 --repeats 5
"""
import argparse
import json
import statistics

import torch
import torchattacks

from nat_tasks.cls import CLASSIFIERS
from nat_tasks.core.attacks import pgd
from bench_common import cifar_model_and_batch, cpu_info, timed  # benchmarks/ is the script folder: on sys.path
from nat_tasks.runtime import resolve_device, tool_main

EPS, ALPHA, STEPS = 8 / 255, 2 / 255, 20


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda if available, else cpu)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per side (after one warm-up)")
    parser.add_argument("--model", default="preact_resnet18", choices=sorted(CLASSIFIERS))
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for torch (default: torch's choice); 1 is steadier on a busy machine")
    return parser.parse_args(argv)


@tool_main
def main(argv=None):
    args = parse_args(argv)
    device = resolve_device(args.device)
    model, x = cifar_model_and_batch(args, device)
    y = torch.randint(0, 10, (args.batch_size,), device=device)
    reference = torchattacks.PGD(model, eps=EPS, alpha=ALPHA, steps=STEPS, random_start=True)

    def evaluate(x_adv):
        with torch.no_grad():
            return (model(x_adv).argmax(1) == y).sum().item()

    sides = {
        "ours": lambda: evaluate(pgd(model, x, y, eps=EPS, alpha=ALPHA, steps=STEPS)),
        "torchattacks": lambda: evaluate(reference(x, y)),
    }
    for run in sides.values():  # warm-up: allocator, kernels selection
        run()
    seconds = {name: [] for name in sides}
    for i in range(args.repeats):
        order = list(sides) if i % 2 == 0 else list(reversed(sides))
        for name in order:
            seconds[name].append(timed(sides[name], device))
    rates = {name: args.batch_size / statistics.median(times) for name, times in seconds.items()}
    print(json.dumps({
        "cpu": cpu_info(), "model": args.model, "device": str(device), "batch_size": args.batch_size,
        "repeats": args.repeats,
        "threads": torch.get_num_threads(),
        "attack": f"Linf PGD-{STEPS}, eps 8/255, step 2/255, random start, then classify",
        "ours_images_per_s": round(rates["ours"], 2),
        "torchattacks_images_per_s": round(rates["torchattacks"], 2),
        "ratio": round(rates["ours"] / rates["torchattacks"], 3),
    }, indent=2))


if __name__ == "__main__":
    main()
