"""No re-ID run executes code from a checkpoint: evaluated weights (``train_reid --eval-only`` and
``tools/test_reid.py``), the NAT adversary, ``--resume``
and ``--pretrained`` refuse a crafted file with one line (exit 2), its payload never runs; the
checkpoints torchreid itself writes still load."""
import numpy as np
import torch

from nat_tasks.reid.config import config_file
from nat_tasks.reid.model import build_reid_model, load_checkpoint_model


def test_evaluated_weights(evil_checkpoint, tool_error, tmp_path):
    err = tool_error("train_reid", "--eval-only", "--weights", evil_checkpoint.path, "--root", tmp_path,
                     "--device", "cpu", "--out", tmp_path / "report")
    evil_checkpoint.assert_refused(err)
    assert not list(tmp_path.glob("report*"))


def test_evaluated_weights_through_test_reid(evil_checkpoint, tool_error, tmp_path):
    """The first checkpoint is read for its input size before any data is."""
    err = tool_error("test_reid", config_file("market1501_resnet50_amd"), evil_checkpoint.path,
                     "--root", tmp_path, "--device", "cpu", "--out", tmp_path / "report")
    evil_checkpoint.assert_refused(err)
    assert not list(tmp_path.glob("report*"))


def test_adversary_resume_and_pretrained(market_root, tiny_args, evil_checkpoint, tool_error, tmp_path):
    evil = evil_checkpoint.path
    evil_checkpoint.assert_refused(tool_error("train_reid", *tiny_args(market_root, tmp_path / "nat", "--nat",
                                                                       "--adversary", evil)))
    evil_checkpoint.assert_refused(tool_error("train_reid", *tiny_args(market_root, tmp_path / "w",
                                                                       "--pretrained", evil)))
    (tmp_path / "resumed").mkdir()
    (tmp_path / "resumed" / "latest.pth").write_bytes(evil_checkpoint.content)
    err = tool_error("train_reid", *tiny_args(market_root, tmp_path / "resumed", "--resume"))
    assert "it references posix.system" in err and not evil_checkpoint.marker.exists()


def test_torchreid_checkpoints_load(tmp_path):
    """As torchreid's engine saves them: numpy rank1, optimizer state, keys with ``module.``."""
    from torchreid.reid.utils import save_checkpoint

    net = build_reid_model("resnet18", 5)
    optimizer = torch.optim.Adam(net.backbone.parameters())
    save_checkpoint({"state_dict": net.backbone.state_dict(), "epoch": 3, "rank1": np.float64(0.25),
                     "optimizer": optimizer.state_dict()}, str(tmp_path), remove_module_from_keys=True)
    loaded, meta = load_checkpoint_model(str(tmp_path / "model.pth.tar-3"), "resnet18")
    assert meta == {} and loaded.num_classes == 5
    torch.testing.assert_close(loaded.backbone.conv1.weight, net.backbone.conv1.weight)
