"""Detection speed: one MTD+NAT training step / one MTD step (target <= 1.10), and images/s of
the adversarial test loop, clean and under each attack.

    python benchmarks/bench_det.py [--config configs/det/demo_mtd.py] [--batch-size 16]
        [--iters 10] [--device cpu] [--data-root DIR] [--test-images 32]

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

from bench_common import cpu_info  # benchmarks/ is the script folder: on sys.path
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

    from nat_tasks.det.attacks import CLEAN, kinds
    from nat_tasks.det.model_cfg import without_training_keys

    cfg = copy.deepcopy(cfg)
    cfg.model = without_training_keys(cfg.model)
    cfg.load_from = checkpoint
    cfg.work_dir = work_dir
    cfg.test_cfg = dict(type="AdversarialTestLoop", attacks=[CLEAN] + kinds(),
                        attack_cfg=dict(eps=8, alpha=2, steps=10, dag_steps=150))
    metrics = Runner.from_cfg(cfg).test()
    return {key.split("/")[0]: value for key, value in metrics.items() if key.endswith("images_per_s")}


@tool_main
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=os.path.join(REPO, "configs", "det", "demo_mtd.py"))
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--test-images", type=int, default=32)
    parser.add_argument("--data-root")
    parser.add_argument("--device", default=None)
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

        steps = bench_training(cfg, adversary_config, checkpoint, args.iters)
        speeds = bench_test_loop(cfg, checkpoint, os.path.join(tmp, "work"))

    print(f"CPU: {cpu_info()}")
    print(f"config {os.path.relpath(args.config, REPO)}, batch {args.batch_size}, "
          f"{torch.get_num_threads()} threads, device {'cuda' if torch.cuda.is_available() else 'cpu'}")
    print(f"MTD step      {statistics.median(steps['mtd']) * 1000:8.1f} ms (median)")
    for name, label in (("mtd_nat", "MTD+NAT"), ("mtd_nat_bf16", "MTD+NAT, bfloat16 adversary")):
        ratios = [n / m for n, m in zip(steps[name], steps["mtd"])]
        print(f"{label}: step {statistics.median(steps[name]) * 1000:.1f} ms, ratio to MTD "
              f"{statistics.median(ratios):.3f} (median of {len(ratios)} rounds; target <= 1.10)")
    for attack, value in speeds.items():
        print(f"test loop {attack:>5}: {value:8.2f} images/s")


if __name__ == "__main__":
    main()
