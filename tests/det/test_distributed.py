"""tools/train.py under torchrun on CPUs (gloo): MTD + NAT trains in 2 processes, rank 0 alone
writes, and the frozen adversary detector is not part of the saved model."""
import os

from nat_tasks.core.checkpoint import safe_load

from .conftest import tiny_config_text


def test_mtd_nat_trains_in_two_cpu_processes(trained_tiny, voc_root, tmp_path, torchrun):
    vanilla_config, _, adversary = trained_tiny
    config = tmp_path / "tiny_mtd_nat.py"
    config.write_text(tiny_config_text(voc_root, f"""
        model = dict(mtd=dict(eps=8, alpha=8, steps=1),
                     nasty=dict(weight=0.04, adversary=dict(config={vanilla_config!r}, checkpoint={adversary!r})))
        """))
    log = torchrun("train", config, "--work-dir", tmp_path / "w", "--cfg-options", "train_cfg.max_epochs=1")
    assert "Distributed training: True" in log and "'backend': 'gloo'" in log and "loss_nasty" in log
    assert len([p for p in os.listdir(tmp_path / "w") if p[:1].isdigit()]) == 1  # one run folder: rank 0's
    state = safe_load(tmp_path / "w" / "epoch_1.pth")["state_dict"]
    assert state and not any(key.startswith("adversary") for key in state)
