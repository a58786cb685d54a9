"""Re-ID training under torchrun on CPUs (gloo), ``distributed.py``: the processes' batches are
disjoint shares of torchreid's identity-sampled global batch, 2 processes train like 1 process with
that global batch (AMD&NAT: attack guides and the batch-hard triplet loss over the global batch),
rank 0 alone writes, a resumed DDP run equals the uninterrupted one bit for bit, and the NAT
adversary stays outside DDP."""
import os
import random
import socket
import sys

import numpy as np
import pytest
import torch

import nat_tasks.runtime  # noqa: F401  (the allow-list our checkpoints' RNG states need)
from nat_tasks.core.checkpoint import atomic_save, safe_load
from nat_tasks.core.errors import NatError
from nat_tasks.reid.distributed import IdentityBatchShards, wrap_model
from nat_tasks.runtime.distributed import process_group

from .test_cli import one_line_error

HERE = os.path.dirname(os.path.abspath(__file__))
PER_PROCESS = 8  # 2 identities x 4 images; x 2 processes = the 1-process batch


def fake_train_set(identities=8, images=8):
    """torchreid's ``data_source``: ``(path, pid, camid, dsetid)`` per image."""
    return [(f"{pid}_{i}.jpg", pid, i % 3, 0) for pid in range(identities) for i in range(images)]


def batches(sampler, size):
    order = list(sampler)
    return [order[i:i + size] for i in range(0, len(order), size)]


def test_the_processes_batches_are_disjoint_identity_groups_that_make_the_global_batch():
    data = fake_train_set()

    def shards(rank, world, epoch=0):
        sampler = IdentityBatchShards(data, 16 // world, 4, seed=3, rank=rank, world=world)
        sampler.set_epoch(epoch)
        return batches(sampler, 16 // world)

    python_state, numpy_state = random.getstate(), np.random.get_state()[1].copy()
    one, rank0, rank1 = shards(0, 1), shards(0, 2), shards(1, 2)
    # The draw borrows the global streams and gives them back untouched.
    assert random.getstate() == python_state and np.array_equal(np.random.get_state()[1], numpy_state)
    assert len(one) == len(rank0) == len(rank1) >= 2
    for whole, first, second in zip(one, rank0, rank1):
        assert first + second == whole and not set(first) & set(second)
        for part in (first, second):  # whole identities: 2 of them, 4 images each
            pids = [data[i][1] for i in part]
            assert sorted(pids.count(p) for p in set(pids)) == [4, 4]
    assert shards(0, 2) == rank0 and shards(0, 2, epoch=1) != rank0  # the same draw per epoch only
    assert len(IdentityBatchShards(data, 8, 4, seed=3, rank=1, world=2)) // 8 == len(one)


# ---- end to end under torchrun ------------------------------------------------------------------


@pytest.fixture(scope="module")
def ddp_plugin():
    """``reid_ddp_plugin.py`` importable here and in the tool processes (their config imports it)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(HERE)
        patch.setenv("PYTHONPATH", os.pathsep.join(p for p in (HERE, os.environ.get("PYTHONPATH")) if p))
        import reid_ddp_plugin as ddp_plugin
        yield ddp_plugin
        ddp_plugin.unregister()
        del sys.modules["reid_ddp_plugin"]


@pytest.fixture(scope="module")
def nat_config(tmp_path_factory, ddp_plugin):
    """AMD&NAT of the BN-free model with FNA (no random start; its pull needs the global batch's
    identities), no random flips and a frozen adversary of the same model: every term of the step
    is deterministic."""
    from nat_tasks.reid.config import config_file
    from nat_tasks.reid.model import build_reid_model

    folder = tmp_path_factory.mktemp("ddp_reid")
    torch.manual_seed(5)
    adversary = folder / "adversary.pth"
    atomic_save({"state_dict": build_reid_model(ddp_plugin.MODEL, 8).state_dict(),
                 "meta": {"model": ddp_plugin.MODEL}}, str(adversary))
    config = folder / "nat.py"
    config.write_text(f"_base_ = [{config_file('market1501_resnet50_amd_nat')!r}]\n"
                      "custom_imports = dict(imports=['reid_ddp_plugin'], allow_failed_imports=False)\n"
                      "data = dict(transforms=[])\n")
    return str(config), str(adversary)


def run_args(market_root, nat_config, work_dir, epochs, batch_size=PER_PROCESS):
    config, adversary = nat_config
    return [config, "--root", market_root, "--model", "ddp_test_mlp", "--adversary", adversary,
            "--height", 32, "--width", 16, "--batch-size", batch_size, "--num-instances", 4,
            "--train-attack", "fna", "--train-steps", 2, "--train-step", "4/255",
            "--epochs", epochs, "--print-freq", 1000, "--work-dir", work_dir]


def weights(path):
    return safe_load(str(path))["state_dict"]


@pytest.fixture
def one_process_group(monkeypatch):
    """The environment torchrun gives a world of one process (for in-process runs); ``--device cpu``
    under a launcher hides GPUs through ``CUDA_VISIBLE_DEVICES``, restored afterwards."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", os.environ.get("CUDA_VISIBLE_DEVICES", ""))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for name, value in dict(RANK=0, WORLD_SIZE=1, LOCAL_RANK=0, MASTER_ADDR="127.0.0.1",
                            MASTER_PORT=port).items():
        monkeypatch.setenv(name, str(value))


@pytest.fixture(scope="module")
def straight_run(market_root, nat_config, tmp_path_factory, torchrun):
    """Two processes, two epochs: ``(work dir, output)``."""
    work_dir = tmp_path_factory.mktemp("straight")
    return work_dir, torchrun("train_reid", *run_args(market_root, nat_config, work_dir, 2))


def test_two_processes_train_like_one_process_with_the_same_global_batch(
        market_root, nat_config, straight_run, tmp_path, train_reid, one_process_group):
    work_dir, log = straight_run
    # Rank 0 alone prints and writes: one header, one TensorBoard file, one set of checkpoints.
    assert log.count("training AMD&NAT (ddp_test_mlp, 8 identities)") == 1
    files = sorted(os.listdir(work_dir))
    assert len(files) == 4 and files[0] == "epoch_2.pth" and files[2:] == ["latest.pth", "train.log"]
    assert files[1].startswith("events.out.tfevents")
    assert safe_load(str(work_dir / "epoch_2.pth"))["meta"]["processes"] == 2

    def one_process(batch_size, name):
        train_reid(run_args(market_root, nat_config, tmp_path / name, 2, batch_size)
                   + ["--launcher", "pytorch", "--device", "cpu"])
        return weights(tmp_path / name / "epoch_2.pth")

    two = weights(work_dir / "epoch_2.pth")
    same_batch, per_process_batch = one_process(2 * PER_PROCESS, "one"), one_process(PER_PROCESS, "small")
    assert two.keys() == same_batch.keys()
    for key in two:
        torch.testing.assert_close(two[key], same_batch[key], rtol=1e-5, atol=1e-6, msg=key)
    # Not vacuous: one process with the per-process batch (twice the steps) ends elsewhere.
    assert any(not torch.allclose(two[key], per_process_batch[key], atol=1e-4) for key in two)


def test_a_resumed_two_process_run_equals_the_uninterrupted_one(market_root, nat_config, straight_run,
                                                               tmp_path, torchrun, train_reid, capsys):
    torchrun("train_reid", *run_args(market_root, nat_config, tmp_path, 1))
    log = torchrun("train_reid", *run_args(market_root, nat_config, tmp_path, 2), "--resume")
    assert "resuming" in log and log.count("epoch: [1/2]") == 0
    straight, resumed = weights(straight_run[0] / "epoch_2.pth"), weights(tmp_path / "epoch_2.pth")
    for key in straight:
        assert torch.equal(straight[key], resumed[key]), key
    # Another number of processes would change the global batch and the random streams: refused.
    err = one_line_error(capsys, train_reid, run_args(market_root, nat_config, tmp_path, 3)
                         + ["--resume", "--device", "cpu"])
    assert "trained by 2 process(es): resume it with as many (now 1)" in err


def test_the_nat_adversary_stays_outside_ddp(market_root, nat_config, tmp_path, one_process_group):
    from nat_tasks.reid.adversary import nasty_spec
    from nat_tasks.reid.cli import train_config, train_parser
    from nat_tasks.reid.train import build_engine

    argv = run_args(market_root, nat_config, tmp_path, 1) + ["--launcher", "pytorch", "--device", "cpu"]
    cfg = train_config(train_parser().parse_args(list(map(str, argv))))
    with process_group("pytorch"):
        engine = build_engine(cfg, "amd_nat", nasty_spec(cfg))
        assert isinstance(engine.model, torch.nn.parallel.DistributedDataParallel)
        assert engine.net is engine.model.module
        assert isinstance(engine.train_loader.sampler, IdentityBatchShards)
        in_ddp = {id(p) for p in engine.model.parameters()}
        adversary = [p for member in engine.adversary.models for p in member.parameters()]
        assert adversary and not in_ddp & {id(p) for p in adversary}
        assert not any(p.requires_grad for p in adversary)
        with pytest.raises(NatError, match="train.sync_bn needs GPUs"):
            cfg.train.sync_bn = True
            wrap_model(engine.net, cfg, torch.device("cpu"))


@pytest.mark.parametrize("extra, message", [
    (["--launcher", "pytorch"], "--launcher pytorch runs under torchrun"),
    (["--demo", "--launcher", "pytorch"], "the demo runs in one"),
    (["--launcher", "pytorch", "--device", "cuda:1"], "each process uses the GPU of its LOCAL_RANK"),
])
def test_launcher_mistakes_are_one_line(extra, message, train_reid, capsys):
    assert message in one_line_error(capsys, train_reid, extra)
