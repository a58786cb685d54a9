"""No file read by the loaders added after #14's fix runs code from it: transfer surrogates
(``--surrogate``, ``--transfer-from``), eval_cls's nat-adaptive adversary, distillation teachers,
RobustBench zoo weights (and a zoo definition that would read weights while it is built), the
analysis tool, ``train_cls`` ``load_from``, a sweep's resumed run and
generated-data ``.npz`` object arrays; also with torch's ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` set.
Each crafted file is refused with one line (exit 2), its payload never runs; that the real files of
each kind load is tested next to their modules (listed per entry point in #14's closing note)."""
import os

import numpy as np
import pytest
import torch

from nat_tasks.cls.demos import sweep
from nat_tasks.cls.models.architectures import build_classifier
from nat_tasks.cls.data.data import CIFAR10
from nat_tasks.core.errors import NatError

from .train_helpers import CONFIGS, VAL_SIZE, write_config

VANILLA, NAT = os.path.join(CONFIGS, "mnist_small_cnn_vanilla.py"), os.path.join(CONFIGS, "mnist_small_cnn_nat.py")
ZOO = "robustbench:cifar10/corruptions/Hendrycks2020AugMix_WRN"  # 2.2M parameters: quick to build


@pytest.mark.parametrize("option", ["--surrogate", "--transfer-from"])
def test_transfer_surrogates(option, evil_checkpoint, tool_error, tmp_path):
    """Surrogates are read before the target: a target that does not exist proves which file was refused."""
    err = tool_error("eval_cls", VANILLA, tmp_path / "target.pth", "--attacks", "clean",
                     option, f"{VANILLA}:{evil_checkpoint.path}", "--out", tmp_path / "out")
    evil_checkpoint.assert_refused(err)
    assert not (tmp_path / "out").exists()


def test_eval_cls_nat_adaptive_adversary(evil_checkpoint, tool_error, tmp_path):
    err = tool_error("eval_cls", NAT, tmp_path / "target.pth", "--attacks", "nat-adaptive3", "--out", tmp_path / "out",
                     "--cfg-options", f"model.nasty.adversary.checkpoint={evil_checkpoint.path}")
    evil_checkpoint.assert_refused(err)


def test_distillation_teacher(cifar10_root, evil_checkpoint, tool_error, tmp_path):
    config = write_config(tmp_path / "rslad.py", base="cifar10_resnet18_rslad_from_at_teacher.py",
                          data_root=str(cifar10_root),
                          model=dict(teacher=dict(arch="small_cnn", checkpoint=evil_checkpoint.path)))
    evil_checkpoint.assert_refused(tool_error("train_cls", config, "--work-dir", tmp_path / "w", "--device", "cpu"))
    assert not list((tmp_path / "w").glob("*.pth"))


def test_robustbench_zoo_weights(cifar10_root, evil_checkpoint, tool_error, tmp_path):
    err = tool_error("eval_cls", os.path.join(CONFIGS, "cifar10_preact18_pgdat.py"), evil_checkpoint.path,
                     "--attacks", "clean", "--out", tmp_path / "out", "--data-root", cifar10_root,
                     "--cfg-options", f"model.arch={ZOO}")
    evil_checkpoint.assert_refused(err)


def test_a_zoo_definition_that_reads_cached_hub_weights_is_refused_and_unpickles_nothing(
        evil_checkpoint, tmp_path, monkeypatch):
    """torch.hub reads a file it cached earlier without downloading, and unpickles it with
    ``weights_only=False`` (its default): a definition that asks for hub weights in a way the
    source check misses must still not read that file."""
    from nat_tasks.cls.models.robustbench_models import zoo_entries

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    cached = tmp_path / "torch_home" / "hub" / "checkpoints" / "w.pth"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(evil_checkpoint.content)
    assert torch.hub.get_dir() == str(cached.parent.parent)

    def cached_weights():
        return torch.hub.load_state_dict_from_url("https://example.invalid/w.pth")

    entries = zoo_entries("cifar10", "Linf")  # robustbench's own dict
    monkeypatch.setitem(entries, "Cached2099", dict(model=cached_weights, gdrive_id="x"))
    real_load = torch.load
    with pytest.raises(NatError) as err:
        build_classifier("robustbench:cifar10/Linf/Cached2099", 10)
    assert not evil_checkpoint.marker.exists(), "the cached file was unpickled"
    assert f"loads {cached} when it is built, which nat_tasks never does" in str(err.value)
    assert "\n" not in str(err.value) and torch.load is real_load  # restored after the build


def test_analysis_tool(evil_checkpoint, tool_error, tmp_path):
    err = tool_error("analyze_cls", VANILLA, evil_checkpoint.path, "--figures", "weights", "--out", tmp_path / "out")
    evil_checkpoint.assert_refused(err)
    assert not (tmp_path / "out").exists()


def test_train_cls_load_from(evil_checkpoint, tool_error, tmp_path):
    err = tool_error("train_cls", VANILLA, "--work-dir", tmp_path / "w", "--device", "cpu",
                     "--cfg-options", f"load_from={evil_checkpoint.path}")
    evil_checkpoint.assert_refused(err)
    assert not list((tmp_path / "w").glob("*.pth"))


def test_the_environment_switch_of_earlier_releases_does_not_turn_the_check_off(evil_checkpoint, tool_error,
                                                                               tmp_path, monkeypatch):
    """``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` (which our tools used to set) makes torch unpickle
    unsafely wherever ``weights_only`` is not passed; our loader passes it, also for mmengine's resume."""
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    work_dir = tmp_path / "w"
    work_dir.mkdir()
    (work_dir / "last_checkpoint").write_text(evil_checkpoint.path)
    evil_checkpoint.assert_refused(tool_error("train_cls", VANILLA, "--work-dir", work_dir, "--resume",
                                              "--device", "cpu"))


def test_a_sweeps_resumed_run(evil_checkpoint, tmp_path):
    """A sweep resumes a run whose folder has a ``last_checkpoint`` (in its own train_cls process):
    the refusal is that run's one-line failure."""
    _, (run,) = sweep.plan_runs(VANILLA, {}, seeds=1, work_dir=str(tmp_path / "sweep"), device="cpu",
                                cfg_options=["train_cfg.max_epochs=1"])
    os.makedirs(run["work_dir"])
    with open(os.path.join(run["work_dir"], "last_checkpoint"), "w") as f:
        f.write(evil_checkpoint.path)
    reason = sweep.execute(run)
    assert reason.startswith("exit status 2: ")
    evil_checkpoint.assert_refused(reason[len("exit status 2: "):])


@pytest.mark.parametrize("member", ["image", "label"])
def test_generated_data_object_arrays_are_never_unpickled(member, cifar10_root, evil_checkpoint, tmp_path):
    """An object array in an ``.npz`` is a pickle: 'image' is refused by its header's dtype,
    'label' by ``np.load``'s ``allow_pickle=False``; neither is unpickled."""
    arrays = dict(image=np.zeros((2, 32, 32, 3), np.uint8), label=np.zeros(2, np.int64))
    arrays[member] = np.array([evil_checkpoint.payload, None], dtype=object)
    np.savez(tmp_path / "generated.npz", **arrays)
    with pytest.raises(NatError) as err:
        CIFAR10(cifar10_root, split="train", val_size=VAL_SIZE, generated=str(tmp_path / "generated.npz"))
    assert not evil_checkpoint.marker.exists(), "the .npz's pickle ran"
    expected = "'image' is object" if member == "image" else "Object arrays cannot be loaded when allow_pickle=False"
    assert expected in str(err.value) and "\n" not in str(err.value)
