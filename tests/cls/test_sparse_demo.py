"""The sparse demo's pieces that run in seconds (the whole demo trains three models: minutes):
its options, the 1-step evaluation attack and the overfitting figure."""
import pytest
import torch
from torch import nn

from nat_tasks.cls.demos.sparse_demo import OneStepSPGD, SparseDemoSettings, plot_overfitting
from nat_tasks.core.errors import NatError
from nat_tasks.core.sparse import changed_locations, spgd_fast


@pytest.mark.parametrize("options,message", [
    (dict(epochz=3), "unknown demo option(s) ['epochz']"),
    (dict(epochs="two"), "bad demo option"),
    (dict(n_curve=0), "must be at least 1"),
    (dict(start_fraction=1.5), "start_fraction=1.5 is outside [0, 1]"),
])
def test_bad_options_are_one_line(options, message):
    with pytest.raises(NatError) as err:
        SparseDemoSettings.from_options(options)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_options_are_typed():
    s = SparseDemoSettings.from_options(dict(epochs="3", beta="1.5"))
    assert (s.epochs, s.beta, s.k) == (3, 1.5, 20)


def test_the_one_step_attack_is_the_training_attack():
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    x, y = torch.rand(5, 1, 4, 4), torch.tensor([0, 1, 2, 0, 1])
    torch.manual_seed(0)
    x_adv = OneStepSPGD(k=3)(model, x, y)
    torch.manual_seed(0)
    assert torch.equal(x_adv, spgd_fast(model, x, y, k=3)) and changed_locations(x_adv, x).max() <= 3


def test_overfitting_figure_is_written(tmp_path):
    curve = dict(clean=[90.0, 95.0], one_step=[60.0, 80.0], saa=[30.0, 5.0])
    path = plot_overfitting({"1-step sAT": curve, "Fast-LS-l0": curve}, tmp_path / "curve.png", caption="test")
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
