"""Loading never runs code from a checkpoint, and the checkpoints we must read still load.

The entry points of each task (evaluation targets, adversaries, resume, ``load_from``) are tested
next to their fixtures in tests/cls, tests/det and tests/reid (``test_checkpoint_safety.py``).
"""
import argparse
import io
import zipfile

import numpy as np
import pytest
import torch
from torch import nn

import nat_tasks.runtime  # noqa: F401  (the allow-list and mmengine's safe local loader)
from nat_tasks.core.adversary import build_adversary
from nat_tasks.core.checkpoint import atomic_save, load_state_dict, load_weights, safe_load
from nat_tasks.core.nasty_config import parse_nasty
from nat_tasks.core.errors import NatError


def error_of(load, *args, **kwargs):
    with pytest.raises(NatError) as err:
        load(*args, **kwargs)
    return str(err.value)


@pytest.mark.parametrize("evil_checkpoint", [False, True], ids=["zip", "legacy"], indirect=True)
def test_code_in_a_checkpoint_is_refused_not_run(evil_checkpoint):
    evil_checkpoint.assert_refused(error_of(safe_load, evil_checkpoint.path))
    evil_checkpoint.assert_refused(error_of(load_state_dict, evil_checkpoint.path))


def test_adversaries_of_every_task_load_through_the_safe_loader(evil_checkpoint):
    spec = parse_nasty(dict(adversary=dict(checkpoint=evil_checkpoint.path)))
    error = error_of(build_adversary, spec, lambda m: load_weights(nn.Linear(1, 1), m["checkpoint"]))
    evil_checkpoint.assert_refused(error)


def test_mmengine_loads_local_checkpoints_through_the_safe_loader(evil_checkpoint):
    from mmengine.runner import load_checkpoint

    evil_checkpoint.assert_refused(error_of(load_checkpoint, nn.Linear(1, 1), evil_checkpoint.path))


@pytest.mark.parametrize("name", ["https://download.openmmlab.com/w.pth", "open-mmlab://resnet50_v1c",
                                  "torchvision://resnet50", "s3://bucket/w.pth"])
def test_mmengine_never_downloads_a_checkpoint(name, monkeypatch):
    """Remote schemes are refused with one line before any request: their loaders would also call
    torch.load without weights_only, which TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD turns off."""
    from mmengine.runner import CheckpointLoader

    def no_network(*args, **kwargs):
        raise AssertionError("a download was attempted")
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_network)
    with pytest.raises(NatError, match="is not a local file: nat_tasks never downloads checkpoints") as err:
        CheckpointLoader.load_checkpoint(name)
    assert "\n" not in str(err.value)


def test_plain_state_dicts_and_numpy_bearing_meta_load(tmp_path):
    model = nn.Linear(2, 1)
    torch.save(model.state_dict(), tmp_path / "plain.pth")
    assert load_state_dict(tmp_path / "plain.pth").keys() == model.state_dict().keys()
    meta = {"rank1": np.float64(0.5), "iter": np.int64(7), "acc": np.float32(0.25), "best": np.bool_(True),
            "rng": np.random.RandomState(0).get_state(), "history": np.arange(4, dtype=np.float64)}
    atomic_save({"state_dict": model.state_dict(), "meta": meta}, tmp_path / "meta.pth")
    loaded = safe_load(tmp_path / "meta.pth")["meta"]
    assert loaded["rank1"] == 0.5 and loaded["iter"] == 7 and loaded["best"] and loaded["acc"].dtype == np.float32
    np.testing.assert_array_equal(loaded["rng"][1], meta["rng"][1])


def test_files_written_under_numpy_1_load(tmp_path):
    """Model-zoo files saved with numpy 1 name numpy.core.multiarray where numpy 2 says numpy._core."""
    atomic_save({"state_dict": {"w": torch.ones(1)}, "meta": {"rank1": np.float64(0.5), "h": np.ones(2)}},
                tmp_path / "new.pth")
    old = io.BytesIO()
    with zipfile.ZipFile(tmp_path / "new.pth") as src, zipfile.ZipFile(old, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith("/data.pkl"):
                assert b"numpy._core.multiarray" in data
                data = data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
            dst.writestr(info, data)
    (tmp_path / "numpy1.pth").write_bytes(old.getvalue())
    assert safe_load(tmp_path / "numpy1.pth")["meta"]["rank1"] == 0.5


def test_an_unlisted_plain_class_is_named_too(tmp_path):
    """A type outside the allow-list is refused even when harmless: the list stays explicit."""
    torch.save({"state_dict": {}, "args": argparse.Namespace(lr=0.1)}, tmp_path / "args.pth")
    assert "it references argparse.Namespace," in error_of(safe_load, tmp_path / "args.pth")


class _Lookup:
    """Pickles as ``getattr(HistoryBuffer, name)``, the way a HistoryBuffer's methods are saved."""

    def __init__(self, name):
        self.name = name

    def __reduce__(self):
        from mmengine.logging import HistoryBuffer

        return getattr, (HistoryBuffer, self.name)


def test_getattr_reaches_history_buffer_statistics_only(tmp_path):
    torch.save({"ok": _Lookup("mean")}, tmp_path / "ok.pth")
    assert safe_load(tmp_path / "ok.pth")["ok"].__name__ == "mean"
    torch.save({"gadget": _Lookup("__init__")}, tmp_path / "gadget.pth")
    assert "it references builtins.getattr," in error_of(safe_load, tmp_path / "gadget.pth")


def test_mmengine_runner_checkpoints_load_and_resume(tmp_path):
    """An mmengine Runner checkpoint (message hub HistoryBuffers, numpy scalars, optimizer and
    scheduler states) loads weights-only, and the Runner resumes from it."""
    from mmengine.model import BaseModel
    from mmengine.runner import Runner

    class Toy(BaseModel):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(2, 1)

        def forward(self, inputs, labels=None, mode="tensor"):
            out = self.linear(inputs).squeeze(1)
            return {"loss": ((out - labels) ** 2).mean()} if mode == "loss" else out

    data = [dict(inputs=torch.randn(2), labels=torch.tensor(float(i % 2))) for i in range(8)]

    def runner(max_epochs, **resume):
        return Runner(model=Toy(), work_dir=str(tmp_path), experiment_name=f"toy{max_epochs}",
                      train_dataloader=dict(dataset=data, batch_size=4, collate_fn=dict(type="default_collate"),
                                            sampler=dict(type="DefaultSampler", shuffle=False)),
                      optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1, momentum=0.9)),
                      param_scheduler=dict(type="MultiStepLR", milestones=[1], by_epoch=True),
                      train_cfg=dict(by_epoch=True, max_epochs=max_epochs),
                      default_hooks=dict(checkpoint=dict(type="CheckpointHook", interval=1)), **resume)

    runner(1).train()
    checkpoint = safe_load(tmp_path / "epoch_1.pth")
    assert checkpoint["meta"]["epoch"] == 1 and checkpoint["message_hub"]["log_scalars"]
    resumed = runner(2, resume=True, load_from=str(tmp_path / "epoch_1.pth"))
    resumed.train()
    assert resumed.epoch == 2
