"""Detection speed: one MTD+NAT training step / one MTD step (target <= 1.10), images/s of the
adversarial test loop, clean and under each attack, and the cost of one TOG step / one DAG step
(target <= 1: TOG is no dearer than DAG per iteration).

    python benchmarks/bench_det.py [--config configs/det/demo_mtd.py] [--batch-size 16]
        [--iters 10] [--device cpu] [--data-root DIR] [--test-images 32]
        [--part all|train|attacks] [--attack-steps 10] [--rounds 5] [--checkpoint PTH]

Attack steps: every TOG variant and DAG run ``--attack-steps`` iterations on the same batch of
test images, in interleaved rounds; a step's cost is the attack's time / its iterations (TOG's
one clean prediction of the detections included), the ratio the median of per-round ratios, by
the wall clock and by the process's CPU time (run with one thread, e.g. ``OMP_NUM_THREADS=1``,
the CPU time is the steadier on a shared machine). DAG
runs every iteration: its score threshold is set to 0, so no image runs out of targets. With
random weights (no ``--checkpoint``) nothing scores above TOG's 0.5, so TOG-untargeted and
-mislabeling have no target; ``--checkpoint`` (trained weights for ``--config``, e.g. the demo's
``work_dirs/demo_vanilla/epoch_12.pth``) times them on real detections.

The training steps use the same detector, batch and optimiser; the NAT adversary is a detector of
the same config (its weights do not change the cost), run once in float32 and once in bfloat16
autocast; each ratio is the median of per-round ratios. Without --data-root a demo VOC tree is
generated in a temporary folder.
"""
import argparse
import copy
import os
import statistics
import tempfile
import time

from bench_common import cpu_info, interleaved_rounds, ratios_to  # benchmarks/ is the script folder: on sys.path
from nat_tasks.runtime import select_runner_device, tool_main

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _config(path, data_root, batch_size, test_images):
    from mmengine.config import Config

    cfg = Config.fromfile(path)
    for split in ("train_dataloader", "val_dataloader", "test_dataloader"):
        cfg[split].dataset.data_root = data_root
        cfg[split].batch_size = batch_size
    cfg.test_dataloader.dataset.indices = test_images
    cfg.model.pop("nasty", None)
    return cfg


def bench_training(cfg, adversary_config, adversary_checkpoint, iters):
    """Seconds of each ``train_step`` (MTD attack, forward, backward, optimiser step) per detector:
    MTD, MTD+NAT, MTD+NAT with the adversary in bfloat16 autocast.

    The detectors step in turn, so a load change on a shared machine hits all alike.
    """
    import torch
    from mmengine.dataset import pseudo_collate
    from mmengine.optim import build_optim_wrapper
    from mmdet.registry import DATASETS, MODELS

    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    batch = pseudo_collate([dataset[i] for i in range(cfg.train_dataloader.batch_size)])
    device = "cuda" if torch.cuda.is_available() else "cpu"
    steppers = {}
    for name, precision in (("mtd", None), ("mtd_nat", None), ("mtd_nat_bf16", "bfloat16")):
        model_cfg = copy.deepcopy(cfg.model)
        if name != "mtd":
            model_cfg.nasty = dict(weight=0.04, tau=4.0, adversary=dict(
                config=adversary_config, checkpoint=adversary_checkpoint, precision=precision))
        torch.manual_seed(0)
        model = MODELS.build(model_cfg).to(device).train()
        steppers[name] = (model, build_optim_wrapper(model, cfg.optim_wrapper))
    times = {name: [] for name in steppers}
    for i in range(iters + 2):
        for name, (model, optim_wrapper) in steppers.items():
            if device == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            model.train_step(batch, optim_wrapper)
            if device == "cuda":
                torch.cuda.synchronize()
            if i >= 2:  # the first two are warm-up
                times[name].append(time.perf_counter() - start)
    return times


def bench_test_loop(cfg, checkpoint, work_dir):
    from mmengine.runner import Runner

    from nat_tasks.det.attacks import default_attacks
    from nat_tasks.det.model_cfg import without_training_keys

    cfg = copy.deepcopy(cfg)
    cfg.model = without_training_keys(cfg.model)
    cfg.load_from = checkpoint
    cfg.work_dir = work_dir
    cfg.test_cfg = dict(type="AdversarialTestLoop", attacks=default_attacks(),
                        attack_cfg=dict(eps=8, alpha=2, steps=10, dag_steps=150))
    metrics = Runner.from_cfg(cfg).test()
    return {key.split("/")[0]: value for key, value in metrics.items() if key.endswith("images_per_s")}


def bench_attack_steps(cfg, steps, rounds, checkpoint=None):
    """Seconds per iteration of DAG and of each TOG variant on one test batch, by the wall clock and
    by the process's CPU time (with one thread, the CPU time is what another job on a shared
    machine does not inflate): {clock: {attack: [per round]}}."""
    import torch
    from mmengine.dataset import pseudo_collate
    from mmengine.runner import load_checkpoint
    from mmdet.registry import DATASETS, MODELS

    from nat_tasks.det.attacks import ATTACKS, AttackConfig, white_box_kinds
    from nat_tasks.det.model_cfg import without_training_keys

    model_cfg = without_training_keys(cfg.model)
    model_cfg.test_cfg.score_thr = 0.0  # DAG keeps every target: it never stops early
    torch.manual_seed(0)
    detector = MODELS.build(model_cfg).eval()
    if checkpoint:
        load_checkpoint(detector, checkpoint, map_location="cpu", logger="silent")
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    batch = pseudo_collate([dataset[i] for i in range(cfg.test_dataloader.batch_size)])
    with torch.no_grad():
        data = detector.data_preprocessor(batch, False)
    config = AttackConfig(eps=8, alpha=2, steps=steps, dag_steps=steps)
    names = ["dag"] + [kind for kind in white_box_kinds() if kind.startswith("tog-")]
    attacks = {name: ATTACKS.build(name, config=config) for name in names}

    def run(name):
        start, cpu = time.perf_counter(), time.process_time()
        attacks[name](detector, data["inputs"], data["data_samples"])
        return (time.perf_counter() - start) / steps, (time.process_time() - cpu) / steps

    run("dag")  # warm-up
    timed = interleaved_rounds(names, run, rounds, seconds=lambda result: result[0])
    return {clock: {name: [result[i] for result in series] for name, series in timed.items()}
            for i, clock in enumerate(("wall", "cpu"))}


@tool_main
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=os.path.join(REPO, "configs", "det", "demo_mtd.py"))
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--test-images", type=int, default=32)
    parser.add_argument("--data-root")
    parser.add_argument("--device", default=None)
    parser.add_argument("--part", choices=("all", "train", "attacks"), default="all",
                        help="train: training steps and test loop; attacks: TOG vs DAG steps")
    parser.add_argument("--attack-steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--checkpoint", help="trained weights of --config for the attack steps (default: random)")
    args = parser.parse_args(argv)
    select_runner_device(args.device)

    import torch
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules

    import nat_tasks.det  # noqa: F401
    from nat_tasks.core.checkpoint import atomic_save
    from nat_tasks.det.demo_data import write_demo_voc
    from nat_tasks.det.model_cfg import without_training_keys

    register_all_modules()
    with tempfile.TemporaryDirectory() as tmp:
        data_root = args.data_root
        if data_root is None:
            data_root = os.path.join(tmp, "VOCdevkit")
            write_demo_voc(data_root, max(64, args.batch_size), args.test_images)
        cfg = _config(args.config, os.path.join(data_root, ""), args.batch_size, args.test_images)
        adversary_config = os.path.join(tmp, "adversary.py")
        cfg_vanilla = copy.deepcopy(cfg)
        cfg_vanilla.model = without_training_keys(cfg_vanilla.model)
        cfg_vanilla.dump(adversary_config)
        checkpoint = os.path.join(tmp, "adversary.pth")
        atomic_save({"state_dict": MODELS.build(cfg_vanilla.model).state_dict()}, checkpoint)

        if args.part in ("all", "train"):
            steps = bench_training(cfg, adversary_config, checkpoint, args.iters)
            speeds = bench_test_loop(cfg, checkpoint, os.path.join(tmp, "work"))
        if args.part in ("all", "attacks"):
            attack_steps = bench_attack_steps(cfg, args.attack_steps, args.rounds, args.checkpoint)

    print(f"CPU: {cpu_info()}, load average {os.getloadavg()[0]:.2f}")
    print(f"config {os.path.relpath(args.config, REPO)}, weights {args.checkpoint or 'random'}, batch {args.batch_size}, "
          f"{torch.get_num_threads()} threads, device {'cuda' if torch.cuda.is_available() else 'cpu'}")
    if args.part in ("all", "train"):
        print(f"MTD step      {statistics.median(steps['mtd']) * 1000:8.1f} ms (median)")
        for name, label in (("mtd_nat", "MTD+NAT"), ("mtd_nat_bf16", "MTD+NAT, bfloat16 adversary")):
            ratios = [n / m for n, m in zip(steps[name], steps["mtd"])]
            print(f"{label}: step {statistics.median(steps[name]) * 1000:.1f} ms, ratio to MTD "
                  f"{statistics.median(ratios):.3f} (median of {len(ratios)} rounds; target <= 1.10)")
        for attack, value in speeds.items():
            print(f"test loop {attack:>5}: {value:8.2f} images/s")
    if args.part in ("all", "attacks"):
        for clock, times in attack_steps.items():
            print(f"{clock} time: DAG step {statistics.median(times['dag']) * 1000:8.1f} ms (median, "
                  f"{args.attack_steps} iterations, {args.rounds} rounds)")
            for name, ratio in ratios_to(times, "dag").items():
                attack = name.split("_vs_")[0]
                print(f"{attack:>16} step {statistics.median(times[attack]) * 1000:8.1f} ms, ratio to DAG "
                      f"{ratio['ratio_median']:.3f} (median of per-round ratios; target <= 1)")


if __name__ == "__main__":
    main()
