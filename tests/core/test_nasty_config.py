"""The ``nasty`` config section every task reads: defaults, members, precision, clear errors."""
import pytest
import torch

from nat_tasks.core.adversary import build_adversary, check_adversary_files
from nat_tasks.core.checkpoint import atomic_save, load_weights
from nat_tasks.core.errors import NatError
from nat_tasks.core.nasty import DEFAULT_TAU, DEFAULT_WEIGHT, NastyLoss
from nat_tasks.core.nasty_config import parse_nasty


def error(section, **kwargs):
    with pytest.raises(NatError) as err:
        parse_nasty(section, **kwargs)
    assert "\n" not in str(err.value)
    return str(err.value)


def test_defaults_are_nastyloss_defaults():
    spec = parse_nasty(dict(adversary=dict(checkpoint="a.pth", arch="cnn")), member_keys=("arch",))
    loss = spec.loss()
    assert (spec.weight, spec.tau, spec.scale_by_tau2) == (DEFAULT_WEIGHT, DEFAULT_TAU, True)
    assert (loss.weight, loss.tau, loss.scale_by_tau2) == (NastyLoss().weight, NastyLoss().tau, True)
    assert spec.members == (dict(checkpoint="a.pth", arch="cnn", trained_by=None),)
    assert spec.precision is None


def test_settings_reach_the_loss():
    spec = parse_nasty(dict(weight=0.04, tau=2, scale_by_tau2=False, adversary=dict(checkpoint="a")))
    loss = spec.loss(reduction="sum", kind="sigmoid")
    assert (loss.weight, loss.tau, loss.scale_by_tau2, loss.reduction, loss.kind) == (
        0.04, 2.0, False, "sum", "sigmoid")
    assert loss.scale == pytest.approx(0.04)


def test_members_expand_checkpoint_lists_and_keep_their_keys():
    spec = parse_nasty(dict(adversary=[dict(arch="a", checkpoint=["1.pth", "2.pth"], precision="bfloat16"),
                                       dict(arch="b", checkpoint="3.pth", trained_by="cfg_b.py",
                                            precision="bfloat16")]),
                       member_keys=("arch",))
    assert [(m["arch"], m["checkpoint"], m["trained_by"]) for m in spec.members] == [
        ("a", "1.pth", None), ("a", "2.pth", None), ("b", "3.pth", "cfg_b.py")]
    assert spec.precision == "bfloat16"


def test_task_keys_have_defaults():
    spec = parse_nasty(dict(anchors="all", adversary=dict(checkpoint="a")), task_keys=dict(anchors="sampled"))
    assert spec.options == dict(anchors="all")
    assert parse_nasty(dict(adversary=dict(checkpoint="a")), task_keys=dict(anchors="sampled")).options == dict(
        anchors="sampled")


@pytest.mark.parametrize("section, expected", [
    (dict(w=0.1, adversary=dict(checkpoint="a")), "model.nasty.w was renamed: use model.nasty.weight"),
    (dict(adversary_precision="bfloat16", adversary=dict(checkpoint="a")), "use model.nasty.adversary.precision"),
    (dict(wieght=0.1, adversary=dict(checkpoint="a")), "unknown key model.nasty.wieght"),
    (dict(weight=0.1), "model.nasty needs adversary=dict(checkpoint=..., arch=..., precision=None)"),
    (dict(adversary=dict(arch="cnn")), "model.nasty.adversary is missing checkpoint"),
    (dict(adversary=dict(checkpoint="a")), "model.nasty.adversary is missing arch"),
    (dict(adversary=dict(checkpoint="a", arch="x", config="c")), "unknown key model.nasty.adversary.config"),
    (dict(adversary=dict(checkpoint="a", arch="x", precision="int8")), "adversary precision 'int8'"),
    (dict(adversary=[dict(checkpoint="a", arch="x"), dict(checkpoint="b", arch="x", precision="float16")]),
     "different precisions"),
    (dict(tau=0, adversary=dict(checkpoint="a", arch="x")), "tau must be positive"),
])
def test_mistakes_are_one_line(section, expected):
    assert expected in error(section, member_keys=("arch",))


def test_missing_checkpoint_names_the_training_command(tmp_path):
    spec = parse_nasty(dict(adversary=dict(checkpoint=str(tmp_path / "v.pth"), trained_by="cfg.py")))
    with pytest.raises(NatError, match=r"v.pth; train it first: `python train.py cfg.py`"):
        check_adversary_files(spec, lambda member: f"python train.py {member['trained_by']}")
    built = []
    with pytest.raises(NatError, match="not found"):
        build_adversary(spec, built.append)
    assert built == []  # nothing is built before every file is there


def test_build_adversary_uses_the_task_callback_and_precision(tmp_path, mlp_factory):
    torch.manual_seed(0)
    atomic_save(mlp_factory().state_dict(), tmp_path / "a.pth")
    spec = parse_nasty(dict(adversary=dict(checkpoint=str(tmp_path / "a.pth"), arch="mlp",
                                           precision="bfloat16")), member_keys=("arch",))
    seen = []

    def build_member(member):
        seen.append(member["arch"])
        return load_weights(mlp_factory(), member["checkpoint"])

    adversary = build_adversary(spec, build_member)
    assert seen == ["mlp"] and adversary.precision == "bfloat16" and len(adversary.models) == 1
