"""NAT's adversary: the core vocabulary and defaults, the vanilla counterpart trained then reused,
checkpoints that do not fit."""
import torch

from nat_tasks.core.checkpoint import atomic_save
from nat_tasks.core.nasty import DEFAULT_TAU, DEFAULT_WEIGHT
from nat_tasks.reid.adversary import nasty_spec
from nat_tasks.reid.cli import train_parser
from nat_tasks.reid.config import config_file, reid_config
from nat_tasks.reid.model import build_reid_model

from .test_cli import one_line_error
from .test_train import load


def test_nat_defaults_come_from_core():
    for name in ("market1501_resnet50_amd_nat", "synthetic_market1501_resnet18_amd_nat"):
        cfg = reid_config(config_file(name))
        assert not {"weight", "tau", "scale_by_tau2"} & set(cfg.model.nasty)
        spec = nasty_spec(cfg, checkpoint="vanilla.pth")
        assert (spec.weight, spec.tau, spec.scale_by_tau2) == (DEFAULT_WEIGHT, DEFAULT_TAU, True)
        assert spec.members == ({"model": cfg.model.name, "checkpoint": "vanilla.pth",
                                 "trained_by": None},)
    args = train_parser().parse_args([])
    assert args.nasty_weight is None and args.nasty_tau is None


def test_nat_trains_then_reuses_its_vanilla_adversary(market_root, nat_run, tiny_args, train_reid,
                                                      capsys):
    work, output = nat_run
    assert "training the vanilla counterpart" in output
    adversary = work / "adversary_vanilla" / "epoch_1.pth"
    nat = load(work / "epoch_1.pth")
    assert nat["meta"]["method"] == "amd_nat"
    assert nat["meta"]["nasty"]["adversary"] == [{"model": "resnet18", "checkpoint": str(adversary),
                                                  "trained_by": None}]
    assert nat["meta"]["nasty"]["precision"] == "bfloat16"
    assert (nat["meta"]["nasty"]["weight"], nat["meta"]["nasty"]["tau"]) == (DEFAULT_WEIGHT, DEFAULT_TAU)
    assert load(adversary)["meta"]["method"] == "vanilla"
    assert not any("adversary" in k for k in nat["state_dict"])  # never saved inside the target

    train_reid(tiny_args(market_root, work, "--nat", "--epochs", 1, "--resume"))
    assert "reusing the vanilla counterpart" in capsys.readouterr().out


def test_adversary_that_does_not_fit(market_root, tiny_args, train_reid, tmp_path, capsys):
    wrong_ids = tmp_path / "ids.pth"
    atomic_save({"state_dict": build_reid_model("resnet18", 5).state_dict(),
                 "meta": {"model": "resnet18", "num_classes": 5}}, wrong_ids)
    err = one_line_error(capsys, train_reid, tiny_args(market_root, tmp_path / "w", "--nat",
                                                       "--adversary", wrong_ids))
    assert "has 5 identities, the training set has 8" in err
    wrong_arch = tmp_path / "osnet.pth"  # a torchreid-style checkpoint: backbone keys, no meta
    torch.save({"state_dict": build_reid_model("osnet_x0_25", 8).backbone.state_dict()}, wrong_arch)
    err = one_line_error(capsys, train_reid, tiny_args(market_root, tmp_path / "w", "--nat",
                                                       "--adversary", wrong_arch))
    assert "does not fit torchreid's ResNet" in err and "wrong --model?" in err
    err = one_line_error(capsys, train_reid, tiny_args(market_root, tmp_path / "w", "--nat",
                                                       "--adversary", tmp_path / "missing.pth"))
    assert err == f"error: adversary checkpoint not found: {tmp_path / 'missing.pth'}"
