"""What every benchmark shares: the CPU it ran on (print it with every figure: bfloat16 is fast
only where the bf16/AMX flags exist), a wall-clock timer that waits for CUDA, interleaved timing
rounds, and the per-round ratios to a reference."""
import statistics
import subprocess
import sys
import time

import torch


def cpu_info():
    """lscpu's model name and its bfloat16 / AMX flags (``None`` where lscpu is unavailable)."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    flags = fields.get("Flags", "").split()
    return dict(model_name=fields.get("Model name", "").strip(),
                bf16_amx_flags=sorted(f for f in flags if "bf16" in f or f.startswith("amx")))


def timed(fn, device):
    """Seconds ``fn()`` takes on ``device`` (CUDA work included)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def cifar_model_and_batch(args, device):
    """``args.model`` (random weights, CIFAR-10 normalisation) in eval mode and a random batch of
    ``args.batch_size`` CIFAR-shaped images, after applying ``args.threads`` and seeding."""
    from nat_tasks.cls import build_classifier
    from nat_tasks.cls.data.data import CIFAR10

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = build_classifier(args.model, 10, mean=CIFAR10.mean, std=CIFAR10.std).to(device).eval()
    return model, torch.rand(args.batch_size, 3, 32, 32, device=device)


def interleaved_rounds(names, run, repeats, seconds=lambda result: result):
    """``repeats`` rounds, each calling ``run(name)`` once per name in turn, so every variant of a
    round meets the same machine load; returns ``{name: [result of each round]}``. A progress line
    per round goes to stderr (``seconds(result)`` of each: a round takes minutes on a loaded CPU)."""
    results = {name: [] for name in names}
    for i in range(repeats):
        for name in names:
            results[name].append(run(name))
        print(f"round {i + 1}/{repeats}: " + ", ".join(f"{k} {seconds(v[-1]):.2f} s" for k, v in results.items()),
              file=sys.stderr, flush=True)
    return results


def ratios_to(times, reference):
    """Per timed variant but ``reference``: the per-round ratios to the reference (rounds are
    interleaved, so each ratio compares steps taken under the same load) and their median."""
    out = {}
    for name, series in times.items():
        if name != reference:
            ratios = [t / r for t, r in zip(series, times[reference])]
            out[f"{name}_vs_{reference}"] = dict(ratio_median=round(statistics.median(ratios), 4),
                                                 ratios=[round(r, 4) for r in ratios])
    return out
