"""Mixed-precision (``--amp``) adversarial training step against the float32 baseline; prints JSON.

Targets: NAT with ``--amp`` (bfloat16 autocast) / float32 standard PGD-AT <= 0.8, and NAT's own
overhead under ``--amp``: NAT ``--amp`` / PGD-AT ``--amp`` <= 1.10 (``docs/results/speed.md``).

One step is exactly the trainer's: ``AdversarialClassifier.train_step`` (data preprocessor, the
method's loss, its inner PGD, backward and an SGD update) through the optimizer wrapper the run
would use: mmengine's ``OptimWrapper`` for float32, ``MixedPrecisionOptimWrapper``
(``nat_tasks/runtime/amp.py``, what ``tools/train_cls.py --amp`` selects) for ``--amp``. Model:
PreActResNet-18 (random weights), CIFAR shape, batch ``--batch-size``, Linf PGD-10 (8/255, step
2/255); NAT's frozen adversary is another PreActResNet-18 at its default precision (None: under
``--amp`` it runs in the step's autocast). Variants (``--variants``): ``pgd_at_fp32`` (the
reference), ``nat_amp`` (the target's numerator), and for context ``nat_fp32`` and
``pgd_at_amp``. Steps are interleaved (one of each variant per round) so load changes hit all
alike; each ratio is the median of the per-round ratios. The report names the CPU (lscpu's model
name and its bf16/amx flags): bfloat16 is fast only where those exist.

``--parts`` (needs ``pgd_at_amp``) also times, in the same rounds and the step's autocast, what NAT
adds to PGD-AT by definition: the training forward and backward on X ∪ X' (2B images) instead of
X' (B), and the frozen adversary's forward on the 2B images (the PGD-10 crafting, the same in
both, is timed for context). Per round, ``nat_amp_without_adversary_vs_pgd_at_amp`` is
``(pgd_at_amp + train_2B - train_B) / pgd_at_amp``: the ratio NAT would reach with a free
adversary; ``nat_amp_from_parts_vs_pgd_at_amp`` adds the adversary's forward.

    python benchmarks/bench_amp.py [--repeats 5] [--batch-size 64] [--device cpu] [--threads N]
        [--amp-dtype bfloat16] [--variants pgd_at_fp32 nat_amp nat_fp32 pgd_at_amp] [--parts]
"""
import argparse
import functools
import json
import os
import statistics
import tempfile

import torch
import torch.nn.functional as F
from mmengine.optim import build_optim_wrapper

from bench_common import cpu_info, interleaved_rounds, ratios_to, timed  # benchmarks/ is the script folder: on sys.path
from nat_tasks.cls.training.adversarial_classifier import AdversarialClassifier
from nat_tasks.cls.models.architectures import build_classifier
from nat_tasks.cls.data.data import CIFAR10
from nat_tasks.cls.methods.standard import craft_pgd
from nat_tasks.runtime import default_device, select_runner_device
from nat_tasks.runtime.amp import AMP_DTYPES, WRAPPER, amp_dtype

VARIANTS = ("pgd_at_fp32", "nat_amp", "nat_fp32", "pgd_at_amp")
ATTACK = dict(eps=8 / 255, alpha=2 / 255, steps=10)
DATA = dict(num_classes=10, mean=CIFAR10.mean, std=CIFAR10.std)


def build_variant(name, adversary_path, dtype, device):
    """(model, optimizer wrapper) of variant ``name``: same initial weights for every variant."""
    method, precision = name.rsplit("_", 1)
    nasty = dict(adversary=dict(arch="preact_resnet18", checkpoint=adversary_path)) if method == "nat" else None
    torch.manual_seed(0)
    model = AdversarialClassifier("preact_resnet18", method=dict(type=method, **ATTACK), nasty=nasty,
                                  **DATA).to(device).train()
    wrapper = dict(type="OptimWrapper", optimizer=dict(type="SGD", lr=0.01, momentum=0.9, weight_decay=5e-4))
    if precision == "amp":
        wrapper.update(type=WRAPPER, dtype=dtype)
    return model, build_optim_wrapper(model, wrapper)


def step_parts(model, wrapper, batch):
    """NAT's step in parts under the step's autocast (``wrapper.optim_context``), each a callable:
    the PGD-10 crafting, the training forward and backward on B (PGD-AT's) and on 2B (NAT's
    X ∪ X'), the frozen adversary's forward on the 2B images."""
    classifier, x, y = model.classifier, batch["inputs"], batch["labels"]
    both, labels = torch.cat([x, x]), torch.cat([y, y])

    def under_autocast(fn):
        with wrapper.optim_context(model):
            return fn()

    def train(inputs, targets):
        under_autocast(lambda: F.cross_entropy(classifier(inputs), targets)).backward()
        classifier.zero_grad(set_to_none=True)

    return dict(attack=lambda: under_autocast(lambda: craft_pgd(classifier, x, y, **ATTACK)),
                train_B=lambda: train(x, y), train_2B=lambda: train(both, labels),
                adversary_2B=lambda: under_autocast(lambda: model.adversary(both)))


def parts_ratios(times):
    """Per round, what NAT's parts predict for NAT --amp / PGD-AT --amp (see the module docstring)."""
    rounds = list(zip(times["pgd_at_amp"], times["train_B"], times["train_2B"], times["adversary_2B"]))
    without = [(step + t2 - t1) / step for step, t1, t2, _ in rounds]
    with_adversary = [(step + t2 - t1 + adv) / step for step, t1, t2, adv in rounds]
    return {name: dict(ratio_median=round(statistics.median(r), 4), ratios=[round(v, 4) for v in r])
            for name, r in (("nat_amp_without_adversary_vs_pgd_at_amp", without),
                            ("nat_amp_from_parts_vs_pgd_at_amp", with_adversary))}


def run(args):
    if args.threads:
        torch.set_num_threads(args.threads)
    select_runner_device(args.device)  # the wrapper's autocast follows mmengine's get_device()
    device = torch.device(default_device())
    dtype = amp_dtype(device.type, args.amp_dtype)
    if "pgd_at_fp32" not in args.variants or "nat_amp" not in args.variants:
        raise SystemExit("--variants must include pgd_at_fp32 and nat_amp (the target's ratio)")
    if args.parts and "pgd_at_amp" not in args.variants:
        raise SystemExit("--parts needs pgd_at_amp in --variants (the parts are compared with its step)")
    with tempfile.TemporaryDirectory() as tmp:
        adversary_path = os.path.join(tmp, "adversary.pth")
        torch.manual_seed(1)
        torch.save(build_classifier("preact_resnet18", **DATA).state_dict(), adversary_path)
        runs = {name: build_variant(name, adversary_path, dtype, device) for name in args.variants}
    torch.manual_seed(2)
    batch = dict(inputs=torch.rand(args.batch_size, 3, 32, 32, device=device),
                 labels=torch.randint(0, 10, (args.batch_size,), device=device))

    timers = {name: functools.partial(model.train_step, batch, wrapper) for name, (model, wrapper) in runs.items()}
    if args.parts:
        timers.update(step_parts(*runs["nat_amp"], batch))
    for fn in timers.values():  # warm-up (oneDNN kernel selection, autocast weight casts)
        fn()
    times = interleaved_rounds(timers, lambda name: timed(timers[name], device), args.repeats)
    report = dict(model="preact_resnet18", batch_size=args.batch_size, pgd_steps=ATTACK["steps"],
                  device=str(device), amp_dtype=dtype, threads=torch.get_num_threads(), repeats=args.repeats,
                  cpu=cpu_info(), load_average=os.getloadavg(),
                  step_s={name: round(statistics.median(times[name]), 3) for name in runs},
                  target=dict(nat_amp_vs_pgd_at_fp32="<= 0.8", nat_amp_vs_pgd_at_amp="<= 1.10"))
    steps = {name: times[name] for name in runs}
    report.update(ratios_to(steps, "pgd_at_fp32"))
    if "pgd_at_amp" in steps:  # NAT's own overhead under --amp, per round
        report.update({k: v for k, v in ratios_to(steps, "pgd_at_amp").items() if k.startswith("nat_amp")})
    if args.parts:
        report["parts_s"] = {name: round(statistics.median(times[name]), 3) for name in times if name not in runs}
        report.update(parts_ratios(times))
    return report


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda if available, else cpu)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    parser.add_argument("--amp-dtype", choices=AMP_DTYPES, help="default: the device's (bfloat16 on CPUs)")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--parts", action="store_true",
                        help="also time NAT's parts (training on 2B vs B, the adversary's forward) in the same rounds")
    print(json.dumps(run(parser.parse_args()), indent=2))


if __name__ == "__main__":
    main()
