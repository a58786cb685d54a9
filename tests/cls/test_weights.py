"""Classifier weights (weights.py): every checkpoint format we meet loads strictly into a
``Classifier``; one that does not fit is one line."""
import pytest
import torch

from nat_tasks.cls.models.architectures import build_classifier
from nat_tasks.cls.models.weights import classifier_from_config, load_classifier_weights
from nat_tasks.core.errors import NatError


@pytest.fixture
def source():
    torch.manual_seed(0)
    return build_classifier("small_cnn", 10, mean=(0.5,) * 3, std=(0.25,) * 3).eval()


@pytest.mark.parametrize("layout", ["trainer", "classifier", "bare_net"])
def test_every_format_loads(source, tmp_path, layout):
    state = {"trainer": dict(state_dict={f"classifier.{k}": v for k, v in source.state_dict().items()}, meta={}),
             "classifier": source.state_dict(), "bare_net": source.net.state_dict()}[layout]
    torch.save(state, tmp_path / "w.pth")
    model_cfg = dict(arch="small_cnn", num_classes=10, mean=(0.5,) * 3, std=(0.25,) * 3, method=dict(type="vanilla"))
    loaded = classifier_from_config(model_cfg, str(tmp_path / "w.pth")).eval()
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded(x), source(x))


def test_a_checkpoint_that_does_not_fit_is_one_line(tmp_path):
    torch.save(build_classifier("small_cnn", 100).state_dict(), tmp_path / "c100.pth")
    with pytest.raises(NatError, match=r"^target .*c100.pth does not fit the model: shape mismatch"):
        load_classifier_weights(build_classifier("small_cnn", 10), str(tmp_path / "c100.pth"), what="target")
