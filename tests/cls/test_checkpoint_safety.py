"""No classification command runs code from a checkpoint: evaluation targets, NAT adversaries and
``--resume`` refuse a crafted file with one line (exit 2), its payload never runs."""
import os

from .train_helpers import CONFIGS

VANILLA, NAT = os.path.join(CONFIGS, "mnist_small_cnn_vanilla.py"), os.path.join(CONFIGS, "mnist_small_cnn_nat.py")


def test_evaluation_target(evil_checkpoint, tool_error, tmp_path):
    evil_checkpoint.assert_refused(tool_error("eval_cls", VANILLA, evil_checkpoint.path, "--attacks", "clean",
                                              "--out", tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_nat_adversary(evil_checkpoint, tool_error, tmp_path):
    evil_checkpoint.assert_refused(tool_error("train_cls", NAT, "--work-dir", tmp_path / "w", "--cfg-options",
                                              f"model.nasty.adversary.checkpoint={evil_checkpoint.path}"))


def test_resume(evil_checkpoint, tool_error, tmp_path):
    """mmengine's resume reads the file named in <work_dir>/last_checkpoint."""
    work_dir = tmp_path / "w"
    work_dir.mkdir()
    (work_dir / "last_checkpoint").write_text(evil_checkpoint.path)
    evil_checkpoint.assert_refused(tool_error("train_cls", VANILLA, "--work-dir", work_dir, "--resume"))
    assert (work_dir / "last_checkpoint").read_text() == evil_checkpoint.path
    assert not list(work_dir.glob("*.pth"))
