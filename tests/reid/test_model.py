"""torchreid models on [0, 1] images: local ImageNet weights only, checkpoints of both kinds."""
import pytest
import torch
import torchvision

from nat_tasks.core.errors import NatError
from nat_tasks.reid.model import IMAGENET_MEAN, build_reid_model, load_checkpoint_model


def test_pretrained_weights_come_from_a_local_file(tmp_path):
    imagenet = torchvision.models.resnet18(weights=None)
    path = tmp_path / "resnet18_imagenet.pth"
    torch.save(imagenet.state_dict(), path)
    net = build_reid_model("resnet18", 7, pretrained=str(path))
    assert torch.equal(net.backbone.conv1.weight, imagenet.conv1.weight)
    assert net.num_classes == 7  # the ImageNet classifier is not taken
    with pytest.raises(NatError, match="nothing is downloaded"):
        build_reid_model("resnet18", 7, pretrained=str(tmp_path / "missing.pth"))
    torch.save({"unrelated.weight": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(NatError, match="no layer of"):
        build_reid_model("resnet18", 7, pretrained=str(tmp_path / "other.pth"))


def test_normalisation_inside_and_logits_in_eval_mode():
    net = build_reid_model("resnet18", 5).eval()
    x = torch.rand(2, 3, 32, 16)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    torch.testing.assert_close(net.embed(x), net.backbone((x - mean) / net.normalize.std))
    assert net.id_logits(x).shape == (2, 5)


def test_torchreid_checkpoint_loads_into_the_wrapper(tmp_path):
    source = build_reid_model("resnet18", 6)
    path = tmp_path / "model.pth.tar-60"  # torchreid's own format: backbone keys, numpy extras
    torch.save({"state_dict": source.backbone.state_dict(), "epoch": 60, "rank1": 0.9}, path)
    net, meta = load_checkpoint_model(str(path), "resnet18")
    assert meta == {} and net.num_classes == 6
    for key, value in source.state_dict().items():
        assert torch.equal(value, net.state_dict()[key])
