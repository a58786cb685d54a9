"""``model.nasty`` of a classification config (nasty_section.py): parsed with core's vocabulary,
keys of earlier releases refused with their new place, the adversary built from any checkpoint
format, a missing or incompatible one a clear line."""
import pytest
import torch

from nat_tasks.cls.models.architectures import build_classifier
from nat_tasks.cls.training.nasty_section import build_adversary, nasty_spec
from nat_tasks.core.errors import NatError

INFO = dict(num_classes=10, in_channels=3, image_size=32, mean=None, std=None)


def spec(**adversary):
    return nasty_spec(dict(method=dict(type="nat"), nasty=dict(adversary=dict(arch="small_cnn", **adversary))))


def test_a_config_without_nasty_has_no_spec():
    assert nasty_spec(dict(arch="small_cnn", method=dict(type="pgd_at", eps=0.1))) is None


def test_settings_and_members_come_from_the_section():
    parsed = nasty_spec(dict(nasty=dict(weight=0.5, tau=2, scale_by_tau2=False, adversary=[
        dict(arch="small_cnn", checkpoint=["a.pth", "b.pth"], trained_by="configs/x.py", precision="bfloat16"),
        dict(arch="resnet18", checkpoint="c.pth", precision="bfloat16")])))
    assert (parsed.weight, parsed.tau, parsed.scale_by_tau2, parsed.precision) == (0.5, 2.0, False, "bfloat16")
    assert [(m["arch"], m["checkpoint"], m["trained_by"]) for m in parsed.members] == [
        ("small_cnn", "a.pth", "configs/x.py"), ("small_cnn", "b.pth", "configs/x.py"), ("resnet18", "c.pth", None)]


@pytest.mark.parametrize("model,message", [
    (dict(adversary=dict(arch="small_cnn", checkpoint="a.pth")), "model.adversary was moved: use model.nasty.adversary"),
    (dict(adversary_precision="bfloat16"), "model.adversary_precision was moved: use model.nasty.adversary.precision"),
    (dict(method=dict(type="nat", w=0.006)), "model.method.w was moved: use model.nasty.weight"),
    (dict(method=dict(type="nat", tau=4)), "model.method.tau was moved: use model.nasty.tau"),
    (dict(method=dict(type="nat", scale_by_tau2=True)), "model.method.scale_by_tau2 was moved: use model.nasty.scale_by_tau2"),
    (dict(nasty=dict(adversary=dict(checkpoint="a.pth"))), "model.nasty.adversary is missing arch"),
    (dict(nasty=dict(adversary=dict(arch="small_cnn", checkpoint="a.pth", precision="fp8"))), "adversary precision 'fp8'"),
])
def test_old_keys_and_mistakes_are_one_line(model, message):
    with pytest.raises(NatError) as err:
        nasty_spec(model)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_adversary_checkpoint_formats(tmp_path):
    source = build_classifier("small_cnn", **INFO)
    torch.save(dict(state_dict={f"classifier.{k}": v for k, v in source.state_dict().items()}, meta={}),
               tmp_path / "ours.pth")
    torch.save(source.net.state_dict(), tmp_path / "bare_net.pth")
    x = torch.rand(2, 3, 32, 32)
    for name in ("ours.pth", "bare_net.pth"):
        adversary = build_adversary(spec(checkpoint=str(tmp_path / name)), INFO)
        assert torch.allclose(adversary(x), source.eval()(x))
    ensemble = build_adversary(spec(checkpoint=[str(tmp_path / "ours.pth")] * 2), INFO)
    assert len(ensemble.models) == 2


def test_missing_and_incompatible_adversaries_fail_clearly(tmp_path):
    missing = str(tmp_path / "none.pth")
    with pytest.raises(NatError) as err:
        build_adversary(spec(checkpoint=missing, trained_by="configs/x.py"), INFO)
    assert str(err.value) == (f"adversary checkpoint not found: {missing}; "
                              "train it first: `python tools/train_cls.py configs/x.py`")
    with pytest.raises(NatError) as err:
        build_adversary(spec(checkpoint=missing), INFO)
    assert str(err.value) == f"adversary checkpoint not found: {missing}"  # no trained_by: no hint
    torch.save(build_classifier("small_cnn", 100).state_dict(), tmp_path / "c100.pth")
    with pytest.raises(NatError, match=r"adversary checkpoint \(small_cnn, 10 classes\) .* shape mismatch"):
        build_adversary(spec(checkpoint=str(tmp_path / "c100.pth")), INFO)
