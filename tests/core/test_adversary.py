"""The frozen adversary stays out of everything that belongs to the target model."""
import copy
import warnings

import pytest
import torch
from torch import nn

from nat_tasks.core.adversary import FrozenAdversary, build_adversary
from nat_tasks.core.checkpoint import atomic_save, load_weights
from nat_tasks.core.errors import NatError
from nat_tasks.core.nasty_config import parse_nasty


class TargetWithAdversary(nn.Module):
    """How the detection plug-in holds it: the adversary as an attribute of the trained model."""

    def __init__(self, target, adversary):
        super().__init__()
        self.target = target
        self.adversary = adversary


def with_dropout(net):
    """Dropout makes train mode visible: outputs would change from call to call."""
    return nn.Sequential(nn.Dropout(0.5), net)


@pytest.fixture
def parent(mlp_factory):
    torch.manual_seed(0)
    return TargetWithAdversary(mlp_factory(), FrozenAdversary([with_dropout(mlp_factory()), mlp_factory()]))


def test_invisible_to_parameters_state_dict_and_optimizers(parent):
    target_params = {id(p) for p in parent.target.parameters()}
    assert {id(p) for p in parent.parameters()} == target_params
    assert all(k.startswith("target.") for k in parent.state_dict())
    optimizer = torch.optim.SGD(parent.parameters(), lr=0.1)
    assert sum(len(g["params"]) for g in optimizer.param_groups) == len(target_params)


def test_train_and_requires_grad_of_the_parent_do_not_reach_it(parent):
    parent.train()
    parent.requires_grad_(True)
    assert parent.target.training and not parent.adversary.training
    assert all(not m.training for member in parent.adversary.models for m in member.modules())
    assert all(not p.requires_grad for member in parent.adversary.models for p in member.parameters())
    x = torch.rand(8, 1, 8, 8)
    assert torch.equal(parent.adversary(x), parent.adversary(x))  # dropout off


def test_ensemble_is_the_mean_of_logits_without_grad(parent):
    x = torch.rand(8, 1, 8, 8, requires_grad=True)
    first, second = parent.adversary.models
    logits = parent.adversary(x)
    with torch.no_grad():
        assert torch.allclose(logits, (first(x) + second(x)) / 2)
    assert not logits.requires_grad


def test_dtype_and_device_moves_of_the_parent_are_forwarded(parent):
    parent.to(torch.bfloat16)
    assert all(p.dtype == torch.bfloat16 for m in parent.adversary.models for p in m.parameters())
    parent.to(torch.float32).to("cpu")
    assert all(p.dtype == torch.float32 and p.device.type == "cpu"
               for m in parent.adversary.models for p in m.parameters())
    assert parent.adversary(torch.rand(2, 1, 8, 8)).dtype == torch.float32


def test_check_num_classes_names_both_counts(parent):
    parent.adversary.check_num_classes(4, torch.rand(1, 1, 8, 8))
    with pytest.raises(NatError, match="4 classes but the target has 10"):
        parent.adversary.check_num_classes(10, torch.rand(1, 1, 8, 8))


def test_needs_a_model():
    with pytest.raises(NatError):
        FrozenAdversary([])


@pytest.fixture
def trained_weights(mlp_factory):
    torch.manual_seed(2)
    return mlp_factory().state_dict()


def build(mlp_factory, checkpoints, num_classes=4):
    """``build_adversary`` as a task calls it, with the toy architecture as its member builder."""
    spec = parse_nasty(dict(adversary=dict(checkpoint=checkpoints)))
    return build_adversary(spec, lambda member: load_weights(
        mlp_factory(num_classes=num_classes), member["checkpoint"], what="adversary checkpoint"))


@pytest.mark.parametrize("layout", ["ours", "plain", "ddp"])
def test_build_adversary_reads_our_plain_and_ddp_files(layout, trained_weights, mlp_factory, tmp_path):
    if layout == "ours":
        obj = dict(state_dict=trained_weights, meta=dict(epoch=3))
    elif layout == "plain":
        obj = trained_weights
    else:
        obj = dict(state_dict={f"module.{k}": v for k, v in trained_weights.items()})
    path = tmp_path / "adversary.pth"
    atomic_save(obj, path)
    adversary = build(mlp_factory, str(path))
    reference = mlp_factory()
    reference.load_state_dict(trained_weights)
    x = torch.rand(4, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(adversary(x), reference(x))
    assert not adversary.models[0].training


def test_build_adversary_builds_an_ensemble(trained_weights, mlp_factory, tmp_path):
    other = {k: v + 1 for k, v in trained_weights.items()}
    atomic_save(trained_weights, tmp_path / "a.pth")
    atomic_save(other, tmp_path / "b.pth")
    adversary = build(mlp_factory, [tmp_path / "a.pth", str(tmp_path / "b.pth")])
    assert len(adversary.models) == 2
    x = torch.rand(3, 1, 8, 8)
    a, b = mlp_factory(), mlp_factory()
    a.load_state_dict(trained_weights)
    b.load_state_dict(other)
    with torch.no_grad():
        assert torch.allclose(adversary(x), (a(x) + b(x)) / 2)


def test_wrong_class_count_is_one_clear_error(mlp_factory, tmp_path):
    atomic_save(dict(state_dict=mlp_factory(num_classes=10).state_dict()), tmp_path / "c10.pth")
    with pytest.raises(NatError) as err:
        build(mlp_factory, str(tmp_path / "c10.pth"))
    message = str(err.value)
    assert "c10.pth" in message and "shape mismatch" in message
    assert "(10, 32) vs (4, 32)" in message or "(10,) vs (4,)" in message
    assert "\n" not in message


def test_deepcopy_keeps_it_frozen(parent):
    clone = copy.deepcopy(parent)
    assert not clone.adversary.training and len(list(clone.parameters())) == len(list(parent.parameters()))


class AutocastProbe(nn.Module):
    """Records the autocast dtype its forward runs under (``None``: autocast off)."""

    def __init__(self, net):
        super().__init__()
        self.net, self.seen = net, []

    def forward(self, x):
        device = x.device.type
        self.seen.append(torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else None)
        return self.net(x)


@pytest.mark.parametrize("precision, dtype", [("bfloat16", torch.bfloat16), ("float16", torch.float16)])
def test_reduced_precision_runs_under_autocast_once_verified(mlp_factory, precision, dtype):
    torch.manual_seed(0)
    probe = AutocastProbe(mlp_factory())
    adversary = FrozenAdversary(probe, precision=precision)
    x = torch.rand(16, 1, 8, 8)
    with torch.no_grad():
        exact = probe.net(x)
    first, second = adversary(x), adversary(x)
    assert probe.seen == [dtype, None, dtype]  # first batch of a shape: both runs; then autocast only
    assert first.dtype == second.dtype == torch.float32 and torch.equal(first, second)
    assert not torch.equal(first, exact) and torch.allclose(first, exact, atol=0.05)


class BrokenUnderAutocast(AutocastProbe):
    """A member whose reduced-precision kernels return garbage (seen with oneDNN bf16 on a 4x2 map)."""

    def forward(self, x):
        out = super().forward(x)
        return out * float("nan") if self.seen[-1] is not None and x.shape[0] == 4 else out


def test_a_shape_whose_reduced_precision_is_wrong_runs_exact(mlp_factory):
    probe = BrokenUnderAutocast(mlp_factory())
    adversary = FrozenAdversary(probe, precision="bfloat16")
    x = torch.rand(4, 1, 8, 8)
    with pytest.warns(UserWarning, match=r"bfloat16 logits on inputs of shape \(4, 1, 8, 8\)"):
        first = adversary(x)
    second = adversary(x)
    with torch.no_grad():
        exact = probe.net(x)
    assert torch.equal(first, exact) and torch.equal(second, exact)
    assert probe.seen == [torch.bfloat16, None, None]  # never autocast again for that shape
    adversary(torch.rand(5, 1, 8, 8))  # another shape is verified on its own (and is fine)
    assert probe.seen[3:] == [torch.bfloat16, None]


def test_reduced_precision_uses_the_channels_last_layout():
    torch.manual_seed(0)
    conv = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(8, 4))
    x = torch.rand(4, 3, 12, 12)
    with torch.no_grad():
        exact = conv.eval()(x)
    untouched = FrozenAdversary(copy.deepcopy(conv))
    assert untouched.models[0][0].weight.is_contiguous()
    adversary = FrozenAdversary(conv, precision="bfloat16")
    assert conv[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(adversary(x), exact, atol=0.05)


def test_default_precision_is_the_callers(mlp_factory):
    probe = AutocastProbe(mlp_factory())
    adversary = FrozenAdversary(probe)
    adversary(torch.rand(2, 1, 8, 8))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        adversary(torch.rand(2, 1, 8, 8))
    assert probe.seen == [None, torch.bfloat16]


def test_unknown_precision_is_one_clear_error(mlp_factory):
    with pytest.raises(NatError, match="adversary precision 'fp8'"):
        FrozenAdversary(mlp_factory(), precision="fp8")


def test_bfloat16_answers_are_faithful_where_a_cpu_kernel_is_not():
    # torch 2.14 + oneDNN on AMX CPUs: this bf16 convolution returns NaN/garbage (4x2 -> 2x1 map);
    # elsewhere it is fine. Either way the adversary must answer (close to) the exact logits.
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(256, 512, 3, stride=2, padding=1, bias=False), nn.Flatten(),
                        nn.Linear(1024, 5))
    x = torch.rand(8, 256, 4, 2)
    with torch.no_grad():
        exact = net.eval()(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        answer = FrozenAdversary(net, precision="bfloat16")(x)
    assert torch.allclose(answer, exact, atol=0.05 * exact.abs().max().item())
