"""Atomic writes never leave a torn or half-replaced file; loading tolerates the usual layouts."""
import os

import pytest
import torch

from nat_tasks.core.checkpoint import atomic_save, atomic_write_text, load_state_dict, load_weights, safe_load
from nat_tasks.core.errors import NatError


def test_failed_save_leaves_the_old_file_intact_and_no_temporary(tmp_path):
    path = tmp_path / "ckpt.pth"
    atomic_save(dict(epoch=1, state_dict={"w": torch.ones(2)}), path)
    with pytest.raises(Exception):
        atomic_save(dict(epoch=2, hook=lambda: None), path)  # lambdas cannot be pickled
    assert safe_load(path)["epoch"] == 1
    assert os.listdir(tmp_path) == ["ckpt.pth"]


def test_save_replaces_and_creates_folders(tmp_path):
    path = tmp_path / "deep" / "er" / "ckpt.pth"
    atomic_save({"epoch": 1}, path)
    atomic_save({"epoch": 2}, path)
    assert safe_load(path)["epoch"] == 2


def test_atomic_write_text(tmp_path):
    path = tmp_path / "results" / "summary.json"
    atomic_write_text('{"clean": 0.9}', path)
    atomic_write_text('{"clean": 0.8}', path)
    assert path.read_text() == '{"clean": 0.8}'
    assert os.listdir(path.parent) == ["summary.json"]


def test_load_state_dict_prefix_keeps_one_submodule(tmp_path):
    atomic_save({"state_dict": {"model.fc.weight": torch.ones(1), "head.w": torch.zeros(1)}}, tmp_path / "m.pth")
    assert list(load_state_dict(tmp_path / "m.pth", prefix="model.")) == ["fc.weight"]
    with pytest.raises(NatError, match="no weights under 'backbone.'"):
        load_state_dict(tmp_path / "m.pth", prefix="backbone.")


def test_unreadable_checkpoints_are_user_errors(tmp_path):
    with pytest.raises(NatError, match="checkpoint not found"):
        load_state_dict(tmp_path / "missing.pth")
    (tmp_path / "garbage.pth").write_bytes(b"not a torch file")
    with pytest.raises(NatError, match="cannot read checkpoint"):
        load_state_dict(tmp_path / "garbage.pth")
    atomic_save({"epoch": 3}, tmp_path / "meta_only.pth")
    with pytest.raises(NatError, match="holds no model state_dict"):
        load_state_dict(tmp_path / "meta_only.pth")


def test_load_weights_reports_missing_and_unexpected_keys(tmp_path):
    model = torch.nn.Linear(2, 3)
    atomic_save({"weight": torch.zeros(3, 2), "extra": torch.zeros(1)}, tmp_path / "m.pth")
    with pytest.raises(NatError) as err:
        load_weights(model, tmp_path / "m.pth", what="target checkpoint")
    assert "target checkpoint" in str(err.value)
    assert "missing keys, e.g. bias" in str(err.value) and "unexpected keys, e.g. extra" in str(err.value)


def test_atomic_files_get_the_usual_mode_not_mkstemps_0600(tmp_path):
    mask = os.umask(0o022)
    try:
        atomic_save({"w": torch.zeros(1)}, tmp_path / "model.pth")
        atomic_write_text("{}", tmp_path / "results.json")
    finally:
        os.umask(mask)
    for name in ("model.pth", "results.json"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o644
