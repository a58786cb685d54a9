"""Multi-process set-up (runtime.distributed): clear errors for launches that cannot work, and the
NAT adversary never inside DDP. The torchrun runs themselves are tested per task
(tests/cls/test_distributed.py, tests/det/test_distributed.py)."""
import pytest
import torch

from nat_tasks.core.errors import NatError
from nat_tasks.runtime.distributed import distributed


def test_the_nat_adversary_is_never_wrapped(tmp_path, monkeypatch, toy_model):
    from mmengine.model import MMDistributedDataParallel

    from nat_tasks.core.adversary import FrozenAdversary

    class Target(torch.nn.Module):  # how AdversarialClassifier holds it: an attribute
        def __init__(self):
            super().__init__()
            self.classifier = torch.nn.Linear(4, 2)
            self.adversary = FrozenAdversary(toy_model)

    torch.distributed.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        wrapped = MMDistributedDataParallel(Target(), device_ids=None)
        assert {n for n, _ in wrapped.named_parameters()} == {"module.classifier.weight", "module.classifier.bias"}
        assert all(not p.requires_grad for p in toy_model.parameters())
    finally:
        torch.distributed.destroy_process_group()


def test_bad_launches_are_one_line(monkeypatch):
    from mmengine.config import Config

    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(NatError, match="--launcher pytorch runs under torchrun"):
        with distributed(Config(dict(launcher="pytorch"))):
            pass
    if not torch.cuda.is_available():
        with pytest.raises(NatError, match="--launcher slurm needs GPUs"):
            with distributed(Config(dict(launcher="slurm"))):
                pass
    with distributed(Config(dict(launcher="none"))):  # one process: nothing to set up
        assert not torch.distributed.is_initialized()
