"""The paths only a GPU runs, checked in one command (estimated 6-8 minutes on one GPU); prints a report.

    python benchmarks/gpu_check.py [--out gpu_check] [--checks amp nccl resume pgd speed]
    python benchmarks/gpu_check.py --device cpu --dry-run     # every check, tiny, on the CPU

Checks (each through the real tools or the library, on synthetic or embedded data):
- ``amp``: a one-epoch training run per task through its train tool with ``--amp``, in float16
  (with the loss scaler: its scale must be in the checkpoint) and in bfloat16 (where the GPU has
  it): classification PGD-AT on the embedded MNIST digits, detection MTD on a generated VOC tree,
  re-ID AMD on the generated Market-1501 tree. Pass: exit 0, checkpoint weights finite float32.
- ``nccl``: ``torchrun --nproc_per_node 1 tools/train_cls.py --launcher pytorch``: the run
  initialises the nccl backend and finishes.
- ``resume``: classification, 2 epochs straight vs 1 epoch then ``--resume`` to 2 (CUDA random
  streams restored): the same weights. A second straight run separates nondeterministic kernels
  (then the resumed run must be as close as the two straight runs are) from a resume fault.
- ``pgd``: PGD-20 of the resumed run's weights on the CPU and on the GPU from the same start
  points (drawn on the CPU): the per-example robust flags agree, up to a few examples (at most 1 %)
  whose flag sits at the decision boundary (both margins are reported).
- ``speed``: PreActResNet-18 at CIFAR size, synthetic batch: PGD-AT and NAT steps (PGD-10) in
  float32 and ``--amp``, NAT / PGD-AT and the ``--amp`` speed-up (medians of interleaved rounds);
  AutoAttack (standard) examples per second on random weights and when no example is ever fooled
  (every stage runs its full budget).
Without a GPU (and no ``--device cpu``) it says so in one line and exits 0. ``--dry-run`` shrinks
every check (CPU: bfloat16 only, gloo instead of nccl) so each path runs in seconds to minutes.
Exit status 1 when a check fails.
"""
import argparse
import glob
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time

import torch

from bench_common import cpu_info, interleaved_rounds, timed  # benchmarks/ is the script folder: on sys.path

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHECKS = ("amp", "nccl", "resume", "pgd", "speed")
CLS_CONFIG = os.path.join(REPO, "configs", "cls", "mnist_small_cnn_pgdat.py")
CLS_TINY = ["model.val_attack.n_examples=20", "default_hooks.logger.interval=5"]
# --dry-run: 500 training digits (of 5000: 4000 to the test split, 500 to validation), 5 steps an epoch
CLS_DRY = ["train_dataloader.dataset.test_size=4000", "val_dataloader.dataset.test_size=4000"]
PGD = dict(eps=0.1, alpha=0.01, steps=20)  # a budget where a briefly trained model keeps some digits
NO_GPU = ("gpu_check: no CUDA GPU on this machine (torch.cuda.is_available() is False): nothing checked; "
          "`--device cpu --dry-run` runs every check tiny on the CPU")


def tool(script, *argv, launcher=None, timeout=600):
    """``tools/<script>`` in a fresh process; (exit status, stdout + stderr)."""
    command = [sys.executable, os.path.join(REPO, "tools", script), *map(str, argv)]
    if launcher:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1",
                   *command[1:], "--launcher", "pytorch"]
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONPATH=REPO)
    try:
        proc = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return 124, f"timed out after {timeout} s"
    return proc.returncode, proc.stdout + proc.stderr


def last_line(output):
    lines = [line for line in output.strip().splitlines() if line.strip()]
    return lines[-1][-300:] if lines else ""


def checkpoint_problem(path, float16):
    """None when ``path`` holds finite float32 weights (and, for float16, the loss scaler's scale)."""
    import nat_tasks.runtime  # noqa: F401  (the allow-list mmengine checkpoints need)
    from nat_tasks.core.checkpoint import safe_load

    if not os.path.isfile(path):
        return f"no checkpoint {os.path.basename(path)}"
    checkpoint = safe_load(path)
    weights = [v for v in checkpoint["state_dict"].values() if torch.is_floating_point(v)]
    if not all(v.dtype == torch.float32 and torch.isfinite(v).all() for v in weights):
        return "weights not finite float32"
    scaler = checkpoint.get("scaler") or checkpoint.get("optimizer", {}).get("loss_scaler") or {}
    if float16 and "scale" not in scaler:
        return "float16 run without the loss scaler's state"
    return None


def cls_run(work_dir, device, epochs, *extra, dry_run=False, launcher=None):
    return tool("train_cls.py", CLS_CONFIG, "--work-dir", work_dir, "--device", device, *extra, "--cfg-options",
                f"train_cfg.max_epochs={epochs}", *CLS_TINY, *(CLS_DRY if dry_run else []), launcher=launcher)


def det_config(root, images):
    """A config of the demo MTD detector on ``root``'s generated VOC tree, one epoch (written once)."""
    path = os.path.join(root, "det_mtd.py")
    if os.path.isfile(path):
        return path
    code, output = tool("make_demo_voc.py", "--root", os.path.join(root, "VOCdevkit"), "--trainval", images,
                        "--test", max(4, images // 2))
    if code:
        raise RuntimeError(f"make_demo_voc.py failed: {last_line(output)}")
    with open(path, "w") as f:
        f.write(textwrap.dedent(f"""\
            _base_ = {os.path.join(REPO, 'configs', 'det', 'demo_mtd.py')!r}
            data_root = {os.path.join(root, 'VOCdevkit') + os.sep!r}
            train_dataloader = dict(batch_size=4, dataset=dict(data_root=data_root))
            val_dataloader = dict(batch_size=4, dataset=dict(data_root=data_root))
            test_dataloader = val_dataloader
            train_cfg = dict(max_epochs=1, val_interval=1)
            param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=True, begin=0, end=1)]
            default_hooks = dict(checkpoint=dict(interval=1))
            """))
    return path


def check_amp(tmp, device, dtypes, dry_run):
    """{'<task> <dtype>': result} for one short ``--amp`` training run per task and dtype."""
    def det(w):
        config = det_config(os.path.join(tmp, "voc"), 8 if dry_run else 32)
        return tool("train.py", config, "--work-dir", w, "--device", device, *amp)

    reid_config = os.path.join(REPO, "configs", "reid", "synthetic_market1501_resnet18_amd.py")
    results = {}
    for dtype in dtypes:
        amp = ["--amp", "--amp-dtype", dtype]
        runs = {
            "classification": (lambda w: cls_run(w, device, 1, *amp, dry_run=dry_run), "epoch_1.pth"),
            "detection": (det, "epoch_1.pth"),
            "re-ID": (lambda w: tool("train_reid.py", reid_config, "--work-dir", w, "--device", device, "--epochs", 1,
                                     "--root", os.path.join(tmp, "reid_data"), "--attack", "none", *amp),
                      "latest.pth"),
        }
        for task, (run, checkpoint) in runs.items():
            work_dir = os.path.join(tmp, f"amp_{task}_{dtype}")
            try:
                code, output = run(work_dir)
                problem = f"exit {code}: {last_line(output)}" if code else checkpoint_problem(
                    os.path.join(work_dir, checkpoint), dtype == "float16")
            except Exception as err:  # e.g. the detection stage missing: the other tasks still run
                problem = f"{type(err).__name__}: {str(err)[-300:]}"
            results[f"{task} {dtype}"] = dict(ok=problem is None, detail=problem or "trained, weights finite float32"
                                              + (", loss scale saved" if dtype == "float16" else ""))
    return results


def check_nccl(tmp, device, dry_run):
    backend = "nccl" if device.startswith("cuda") else "gloo"
    work_dir = os.path.join(tmp, "nccl")
    code, output = cls_run(work_dir, device, 1, dry_run=dry_run, launcher=True)
    logs = "".join(open(p).read() for p in glob.glob(os.path.join(work_dir, "*", "*.log")))
    initialised = f"'backend': '{backend}'" in output + logs
    ok = code == 0 and initialised and os.path.isfile(os.path.join(work_dir, "epoch_1.pth"))
    detail = f"{backend}: 1 process trained an epoch" if ok else f"exit {code}, {backend} named: {initialised}: " \
        f"{last_line(output)}"
    return {f"torchrun 1 process ({backend})": dict(ok=ok, detail=detail)}


def weights_of(path):
    import nat_tasks.runtime  # noqa: F401  (the allow-list mmengine checkpoints need)
    from nat_tasks.core.checkpoint import safe_load

    return safe_load(path)["state_dict"]


def max_difference(a, b):
    return max(((a[k].double() - b[k].double()).abs().max().item() for k in a if torch.is_floating_point(a[k])),
               default=0.0)


def check_resume(tmp, device, dry_run):
    """Returns (results, the resumed run's checkpoint for the pgd check)."""
    paths = {}
    for name in ("straight", "straight_again"):
        code, output = cls_run(os.path.join(tmp, name), device, 2, dry_run=dry_run)
        if code:
            return {"resume": dict(ok=False, detail=f"{name}: exit {code}: {last_line(output)}")}, None
        paths[name] = os.path.join(tmp, name, "epoch_2.pth")
    resumed = os.path.join(tmp, "resumed")
    code, output = cls_run(resumed, device, 1, dry_run=dry_run)
    if not code:
        code, output = cls_run(resumed, device, 2, "--resume", dry_run=dry_run)
    if code:
        return {"resume": dict(ok=False, detail=f"resumed run: exit {code}: {last_line(output)}")}, None
    straight, again = weights_of(paths["straight"]), weights_of(paths["straight_again"])
    ours = weights_of(os.path.join(resumed, "epoch_2.pth"))
    noise, gap = max_difference(straight, again), max_difference(straight, ours)
    if noise == 0.0:
        ok, detail = gap == 0.0, f"bit for bit equal to the uninterrupted run (max difference {gap:.3g})"
    else:  # nondeterministic kernels: the resumed run must be as close as a repeated straight run
        ok = gap <= 10 * noise
        detail = f"nondeterministic kernels: two straight runs differ by {noise:.3g}, the resumed one by {gap:.3g}"
    return {"resume on " + device: dict(ok=ok, detail=detail)}, os.path.join(resumed, "epoch_2.pth")


def pgd_flags(model, x, y, starts):
    """Per-example robust flags of PGD-20 from the given start offsets, and the final margins."""
    from nat_tasks.core.attacks import cw_margin_loss, pgd

    offsets = iter([starts])
    x_adv = pgd(model, x, y, random_start=lambda x0: next(offsets).to(x0), **PGD)
    with torch.no_grad():
        clean, logits = model(x).argmax(1) == y, model(x_adv)
    return (clean & (logits.argmax(1) == y)).cpu(), (-cw_margin_loss(logits.float(), y)).cpu()


def check_pgd(checkpoint, device, x, y):
    """PGD-20 of fixed weights on the CPU and on ``device``, the same start points, on digits ``x, y``."""
    from nat_tasks.cls.models.architectures import build_classifier
    from nat_tasks.cls.data.data import EmbeddedMNIST
    from nat_tasks.cls.models.weights import load_classifier_weights

    info = dict(num_classes=10, in_channels=1, image_size=28, mean=EmbeddedMNIST.mean, std=EmbeddedMNIST.std)
    n = len(y)
    starts = torch.empty_like(x).uniform_(-PGD["eps"], PGD["eps"], generator=torch.Generator().manual_seed(0))
    flags, margins = {}, {}
    for where in ("cpu", device):
        model = load_classifier_weights(build_classifier("small_cnn", **info), checkpoint).to(where).eval()
        flags[where], margins[where] = pgd_flags(model, x.to(where), y.to(where), starts)
    differ = (flags["cpu"] != flags[device]).nonzero().flatten().tolist()
    allowed = max(1, n // 100)
    detail = (f"{n} test digits, robust {int(flags['cpu'].sum())} (cpu) / {int(flags[device].sum())} ({device}); "
              f"{len(differ)} flags differ (allowed {allowed})")
    if differ:
        detail += "; margins cpu/" + device + ": " + ", ".join(
            f"{margins['cpu'][i]:.3g}/{margins[device][i]:.3g}" for i in differ[:5])
    return {"PGD-20 cpu vs " + device: dict(ok=len(differ) <= allowed, detail=detail)}


def held_out(n):
    from nat_tasks.cls.demos.demo import held_out_digits

    return held_out_digits(4000, n)  # of the MNIST config's test split (1000 digits)


class NeverFooled(torch.nn.Module):
    """The network's real work, and logits that keep class 0 on top: every attack stage runs its budget."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        logits = self.net(x)
        return logits + 1e4 * torch.nn.functional.one_hot(torch.zeros_like(logits[:, 0]).long(), logits.shape[1])


def autoattack_rate(model, x, y, dry_run):
    from nat_tasks.core.autoattack import autoattack

    settings = dict(version="custom", attacks=["apgd-ce"], apgd_steps=2) if dry_run else dict(version="standard")
    seconds = timed(lambda: autoattack(model, x, y, eps=8 / 255, batch_size=len(x), **settings), x.device)
    return round(len(x) / seconds, 2)


def check_speed(device, dry_run):
    """The speed table's figures (no pass/fail)."""
    from bench_amp import build_variant
    from nat_tasks.cls.models.architectures import build_classifier
    from nat_tasks.cls.data.data import CIFAR10
    from nat_tasks.runtime.amp import amp_dtype

    batch_size, repeats = (2, 1) if dry_run else (128, 5)
    device_ = torch.device(device)
    dtype = amp_dtype(device_.type)
    with tempfile.TemporaryDirectory() as tmp:
        adversary = os.path.join(tmp, "adversary.pth")
        torch.manual_seed(1)
        torch.save(build_classifier("preact_resnet18", 10, mean=CIFAR10.mean, std=CIFAR10.std).state_dict(), adversary)
        runs = {name: build_variant(name, adversary, dtype, device_)
                for name in ("pgd_at_fp32", "pgd_at_amp", "nat_fp32", "nat_amp")}
    torch.manual_seed(2)
    batch = dict(inputs=torch.rand(batch_size, 3, 32, 32, device=device_),
                 labels=torch.randint(0, 10, (batch_size,), device=device_))

    def step(name):
        model, wrapper = runs[name]
        return timed(lambda: model.train_step(batch, wrapper), device_)

    for name in runs:  # warm-up: kernel selection, autocast casts
        step(name)
    times = {k: statistics.median(v) for k, v in interleaved_rounds(runs, step, repeats).items()}
    net = build_classifier("preact_resnet18", 10, mean=CIFAR10.mean, std=CIFAR10.std).to(device_).eval()
    x = torch.rand(4 if dry_run else 128, 3, 32, 32, device=device_)
    with torch.no_grad():
        y_random = net(x).argmax(1)
    return dict(batch_size=batch_size, amp_dtype=dtype, step_s={k: round(v, 4) for k, v in times.items()},
                nat_vs_pgd_at_fp32=round(times["nat_fp32"] / times["pgd_at_fp32"], 3),
                nat_vs_pgd_at_amp=round(times["nat_amp"] / times["pgd_at_amp"], 3),
                amp_speedup_pgd_at=round(times["pgd_at_fp32"] / times["pgd_at_amp"], 3),
                autoattack_examples_per_s=dict(
                    random_weights=autoattack_rate(net, x, y_random, dry_run),
                    never_fooled=autoattack_rate(NeverFooled(net).eval(), x, torch.zeros_like(y_random), dry_run)))


def markdown(report):
    lines = [f"# GPU check on {report['device_name']}", "", "| check | result | detail |", "|---|---|---|"]
    lines += [f"| {name} | {'pass' if r['ok'] else 'FAIL'} | {r['detail']} |" for name, r in report["checks"].items()]
    speed = report.get("speed")
    if speed:
        lines += ["", f"Speed (PreActResNet-18, CIFAR size, batch {speed['batch_size']}, PGD-10, --amp "
                  f"{speed['amp_dtype']}):", "", "| figure | value |", "|---|---|"]
        lines += [f"| step s {name} | {value} |" for name, value in speed["step_s"].items()]
        lines += [f"| {key.replace('_', ' ')} | {speed[key]} |"
                  for key in ("nat_vs_pgd_at_fp32", "nat_vs_pgd_at_amp", "amp_speedup_pgd_at")]
        lines += [f"| AutoAttack examples/s, {k.replace('_', ' ')} | {v} |"
                  for k, v in speed["autoattack_examples_per_s"].items()]
    lines += ["", f"{report['seconds']:.0f} s in all, {'dry run' if report['dry_run'] else 'full size'}."]
    return "\n".join(lines) + "\n"


def run(args):
    device = args.device or "cuda"
    gpu = device.startswith("cuda")
    if gpu and not torch.cuda.is_available():
        print(NO_GPU)
        return 0
    start = time.perf_counter()
    dtypes = (["float16"] + (["bfloat16"] if torch.cuda.is_bf16_supported() else [])) if gpu else ["bfloat16"]
    checks, speed = {}, None
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.checks:
            began = time.perf_counter()
            print(f"== {name}", file=sys.stderr, flush=True)
            try:
                if name == "amp":
                    checks.update(check_amp(tmp, device, dtypes, args.dry_run))
                elif name == "nccl":
                    checks.update(check_nccl(tmp, device, args.dry_run))
                elif name == "resume":
                    result, args.resumed = check_resume(tmp, device, args.dry_run)
                    checks.update(result)
                elif name == "pgd":
                    if args.resumed is None:  # without the resume check: a one-epoch run of its own
                        code, output = cls_run(os.path.join(tmp, "pgd_weights"), device, 1, dry_run=args.dry_run)
                        args.resumed = None if code else os.path.join(tmp, "pgd_weights", "epoch_1.pth")
                    checks.update(check_pgd(args.resumed, device, *held_out(20 if args.dry_run else 500))
                                  if args.resumed else {"PGD-20": dict(ok=False, detail="no weights to evaluate")})
                else:
                    speed = check_speed(device, args.dry_run)
            except Exception as err:  # one failing check does not hide the others' results
                checks[name] = dict(ok=False, detail=f"{type(err).__name__}: {str(err)[-300:]}")
            print(f"   {time.perf_counter() - began:.0f} s", file=sys.stderr, flush=True)
    report = dict(device=device, device_name=torch.cuda.get_device_name(device) if gpu else "cpu", cpu=cpu_info(),
                  torch=torch.__version__, dry_run=args.dry_run, checks=checks, speed=speed,
                  seconds=round(time.perf_counter() - start, 1))
    text = markdown(report)
    print(text)
    if args.out:
        from nat_tasks.runtime import write_results

        write_results(args.out, report, text)
    return 0 if all(r["ok"] for r in checks.values()) else 1


def build_parser():
    parser = argparse.ArgumentParser(prog="python benchmarks/gpu_check.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", help="cuda (default) or cuda:N; cpu with --dry-run exercises the paths")
    parser.add_argument("--dry-run", action="store_true", help="every check tiny (seconds to minutes on a CPU)")
    parser.add_argument("--checks", nargs="+", choices=CHECKS, default=list(CHECKS), help="default: all")
    parser.add_argument("--out", help="also write <OUT>.json and <OUT>.md")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.device == "cpu" and not args.dry_run:
        build_parser().error("--device cpu runs the checks as a --dry-run only (the figures are a GPU's)")
    args.resumed = None
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
