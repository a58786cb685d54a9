"""Speed of the sparse (l0) attacks and training: sPGD vs PGD per iteration, Fast-LS-l0 vs sTRADES per
training step, and sAA throughput.

1. Per iteration, on the same eval-mode model and batch (PreActResNet-18, CIFAR shape): sPGD
   (TopK mask, forward, input backward, both gradients, updates, best-loss / patience bookkeeping,
   no early stop so every example runs every iteration) vs our Linf PGD (forward + input backward
   + sign step + projection). Two figures, medians over interleaved rounds: ``ratio_runs``, the
   per-round ratio of whole ``--steps-long`` runs (conservative: it charges sPGD's extra final
   forward and its set-up to its iterations), and ``ratio_slopes``, the ratio of the per-iteration
   slopes between ``--steps-short`` and ``--steps-long`` runs (set-up cancels; noisier on a busy
   machine). Target: <= 1.15 (the mask bookkeeping must not dominate).
2. Training step (``--parts train``): one Fast-LS-l0 step (1-step sPGD + SAT soft labels + TRADES loss,
   forward, backward, SGD step) / one 20-step sTRADES step (same model, batch, k and beta), model in
   train mode. The untrained network is fooled at once, so sTRADES' early stop would end its attack
   after an iteration or two; we time it with ``early_stop=False`` (all ``--train-steps``
   iterations, the cost on a robust model, the case of the paper's training-time claim) and also
   as configured (early stop). Target: <= 1/6 (Fast-LS-l0's claim). Medians over interleaved rounds.
   The same rounds time the parts: the 1-step attack (``attack_fast``), sTRADES' ``--train-steps``
   attack without early stop (``attack_strades``) and the training pass both steps share (``training_pass``:
   train-mode forwards on x and x', the loss, backward, SGD step). Per round,
   ``ratio_from_parts`` = (attack_fast + training_pass) / (attack_strades + training_pass), what the
   ratio is with no overhead beyond the parts; it is <= 1/6 only while training_pass <=
   (attack_strades - 6 attack_fast) / 5 (``training_pass_limit_for_one_sixth``).
3. sparse-AutoAttack on one batch at a reduced budget (``--saa-steps`` sPGD iterations,
   ``--saa-queries`` Sparse-RS queries; the paper's 10000 / 10000 are out of reach on a CPU):
   images/s at ``--saa-k`` (default ``--k``), per stage the examples attacked, fooled, image
   evaluations and seconds, and the
   evaluations a cascade without early stop would make (every stage on every clean-correct
   example for its whole budget).
The model is untrained (random weights, labels = its own predictions), so clean accuracy is 100 %
by construction; an untrained network is far less robust than a trained one, so part 3 shows the
mechanism, not a trained model's cost. Repetitions are interleaved; medians are reported. Prints
the CPU model and JSON.

    python benchmarks/bench_sparse.py --threads 1
    python benchmarks/bench_sparse.py --threads 1 --parts saa --saa-k 2 --saa-steps 100 --saa-queries 300
    python benchmarks/bench_sparse.py --parts train --train-batch-size 32 --train-repeats 3
"""
import argparse
import json
import os
import statistics
import time

import torch
import torch.nn.functional as F

from nat_tasks.cls import CLASSIFIERS, build_classifier
from nat_tasks.cls.data.data import CIFAR10
from nat_tasks.cls.methods import build_method
from nat_tasks.cls.methods.self_adaptive import trades_kl
from nat_tasks.cls.methods.sparse import craft_sparse
from nat_tasks.core.attacks import pgd
from nat_tasks.core.soft_targets import SoftTargets
from nat_tasks.core.sparse import sparse_autoattack, spgd
from bench_common import cifar_model_and_batch, cpu_info, timed  # benchmarks/ is the script folder: on sys.path
from nat_tasks.runtime import resolve_device, tool_main


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda if available, else cpu)")
    parser.add_argument("--model", default="preact_resnet18", choices=sorted(CLASSIFIERS))
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--steps-short", type=int, default=1)
    parser.add_argument("--steps-long", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5, help="interleaved timed rounds (after one warm-up)")
    parser.add_argument("--saa-k", type=int, help="sAA's budget (default --k); a small one makes an untrained "
                        "model survive the first stage, so the later stages and the early stop show")
    parser.add_argument("--parts", default="iteration,saa",
                        help="comma-separated parts to run: iteration, train, saa (train: slow on a CPU, opt in)")
    parser.add_argument("--saa-batch-size", type=int, default=64)
    parser.add_argument("--saa-steps", type=int, default=20)
    parser.add_argument("--saa-queries", type=int, default=100)
    parser.add_argument("--saa-repeats", type=int, default=1)
    parser.add_argument("--train-k", type=int, default=120, help="training budget (the CIFAR configs' 120)")
    parser.add_argument("--train-steps", type=int, default=20, help="sTRADES' sPGD iterations")
    parser.add_argument("--train-batch-size", type=int, default=128)
    parser.add_argument("--train-repeats", type=int, default=3, help="interleaved timed rounds (after one warm-up)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)")
    return parser.parse_args(argv)


@tool_main
def main(argv=None):
    args = parse_args(argv)
    device = resolve_device(args.device)
    model, x = cifar_model_and_batch(args, device)
    with torch.no_grad():
        y = model(x).argmax(1)
    parts = {p.strip() for p in args.parts.split(",")}
    report = {"model": args.model, "device": str(device), "threads": torch.get_num_threads()}
    if "iteration" in parts:
        report["per_iteration"] = per_iteration_part(args, model, x, y, device)
    if "train" in parts:
        report["train_step"] = train_part(args, device)
    if "saa" in parts:
        report["saa"] = saa_part(args, model, device)
    report["load_average"] = os.getloadavg()  # 1, 5, 15 minutes, at the end
    print(f"CPU: {cpu_info()}")
    print(json.dumps(report, indent=2))


def per_iteration_part(args, model, x, y, device):
    sides = {}
    for steps in (args.steps_short, args.steps_long):
        sides[("spgd", steps)] = lambda s=steps: spgd(model, x, y, k=args.k, steps=s, early_stop=False)
        sides[("pgd", steps)] = lambda s=steps: pgd(model, x, y, eps=8 / 255, alpha=2 / 255, steps=s)
    for run in sides.values():  # warm-up
        run()
    seconds = {key: [] for key in sides}
    for i in range(args.repeats):
        for key in (list(sides) if i % 2 == 0 else list(reversed(sides))):
            seconds[key].append(timed(sides[key], device))
    span = args.steps_long - args.steps_short
    per_iteration = {}
    for name in ("spgd", "pgd"):
        slopes = [(long - short) / span for long, short in zip(seconds[(name, args.steps_long)],
                                                                  seconds[(name, args.steps_short)])]
        per_iteration[name] = statistics.median(slopes)
    ratio_runs = statistics.median(a / b for a, b in zip(seconds[("spgd", args.steps_long)],
                                                         seconds[("pgd", args.steps_long)]))
    return {
        "k": args.k, "batch_size": args.batch_size, "repeats": args.repeats,
        "steps": [args.steps_short, args.steps_long],
        "spgd_run_seconds": round(statistics.median(seconds[("spgd", args.steps_long)]), 3),
        "pgd_run_seconds": round(statistics.median(seconds[("pgd", args.steps_long)]), 3),
        "ratio_runs": round(ratio_runs, 3),
        "spgd_slope_seconds": round(per_iteration["spgd"], 4), "pgd_slope_seconds": round(per_iteration["pgd"], 4),
        "ratio_slopes": round(per_iteration["spgd"] / per_iteration["pgd"], 3), "target": "<= 1.15",
    }


def train_part(args, device):
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = build_classifier(args.model, 10, mean=CIFAR10.mean, std=CIFAR10.std).to(device).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x = torch.rand(args.train_batch_size, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (args.train_batch_size,), device=device)
    index = torch.arange(args.train_batch_size, device=device)
    targets = SoftTargets(10, start_epoch=0).to(device)
    targets.set_epoch(0)  # updating: the soft targets' full cost
    strades = dict(type="sparse_trades", k=args.train_k, steps=args.train_steps, beta=3.0)
    methods = {"fast_ls_l0": build_method(dict(type="fast_ls_l0", k=args.train_k, beta=3.0), soft_targets=targets),
               "strades_no_early_stop": build_method(dict(strades, early_stop=False)),
               "strades_early_stop": build_method(strades)}

    def update(terms):
        optimizer.zero_grad()
        sum(v for key, v in terms.items() if "loss" in key).backward()
        optimizer.step()

    x_adv = craft_sparse(model, x, y, k=args.train_k, steps=1)

    def training_pass():  # what both steps do after their attack (Fast-LS-l0's soft labels cost ~nothing)
        logits_clean, logits_adv = model(x), model(x_adv)
        update(dict(loss=F.cross_entropy(logits_clean, y) + 3.0 * trades_kl(logits_clean, logits_adv)))

    timers = {name: (lambda method=method: update(method(model, x, y, index=index)))
              for name, method in methods.items()}
    timers.update(attack_fast=lambda: craft_sparse(model, x, y, k=args.train_k, steps=1),
                  attack_strades=lambda: craft_sparse(model, x, y, k=args.train_k, steps=args.train_steps,
                                                     early_stop=False),
                  training_pass=training_pass)
    for run in timers.values():  # warm-up
        run()
    seconds = {name: [] for name in timers}
    for i in range(args.train_repeats):
        for name in (list(timers) if i % 2 == 0 else list(reversed(timers))):
            seconds[name].append(timed(timers[name], device))
    median = {name: statistics.median(values) for name, values in seconds.items()}
    parts = list(zip(seconds["attack_fast"], seconds["attack_strades"], seconds["training_pass"]))
    return {
        "k": args.train_k, "batch_size": args.train_batch_size, "strades_steps": args.train_steps,
        "repeats": args.train_repeats, "seconds": {name: round(value, 3) for name, value in median.items()},
        "ratio_fast_over_strades": round(statistics.median(
            a / b for a, b in zip(seconds["fast_ls_l0"], seconds["strades_no_early_stop"])), 4),
        "ratio_fast_over_strades_early_stop": round(statistics.median(
            a / b for a, b in zip(seconds["fast_ls_l0"], seconds["strades_early_stop"])), 4),
        "ratio_from_parts": round(statistics.median((a_f + t) / (a_s + t) for a_f, a_s, t in parts), 4),
        "training_pass_over_attack_fast": round(statistics.median(t / a_f for a_f, _, t in parts), 3),
        "training_pass_limit_for_one_sixth": round(statistics.median((a_s - 6 * a_f) / 5 for a_f, a_s, _ in parts), 3),
        "target": "<= 1/6 = 0.1667 (no early stop: the attack's full 20 iterations)",
    }


def saa_part(args, model, device):
    k = args.saa_k or args.k
    torch.manual_seed(1)
    x_saa = torch.rand(args.saa_batch_size, 3, 32, 32, device=device)
    with torch.no_grad():
        y_saa = model(x_saa).argmax(1)
    saa_seconds, info = [], None
    for _ in range(args.saa_repeats):
        torch.manual_seed(0)
        start = time.perf_counter()
        _, info = sparse_autoattack(model, x_saa, y_saa, k=k, steps=args.saa_steps, queries=args.saa_queries,
                                    return_info=True)
        saa_seconds.append(time.perf_counter() - start)
    clean = int(info["clean"].sum())
    without_early_stop = clean * (2 * (args.saa_steps + 1) + args.saa_queries)
    used = sum(s["evaluations"] for s in info["stages"])
    return {
        "k": k, "batch_size": args.saa_batch_size, "spgd_steps": args.saa_steps, "rs_queries": args.saa_queries,
        "seconds": round(statistics.median(saa_seconds), 2),
        "images_per_s": round(args.saa_batch_size / statistics.median(saa_seconds), 2),
        "stages": [{key: (round(value, 2) if isinstance(value, float) else value) for key, value in s.items()
                    if key != "robust"} for s in info["stages"]],
        "robust_after": int(info["stages"][-1]["robust"].sum()), "clean_correct": clean,
        "image_evaluations": used, "image_evaluations_without_early_stop": without_early_stop,
        "fraction_of_the_no_early_stop_cost": round(used / max(without_early_stop, 1), 4),
    }

if __name__ == "__main__":
    main()
