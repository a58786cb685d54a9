"""tools/eval_cls.py end to end: reports, the config's NAT settings in nat-adaptive, one-line errors."""
import json
import os

import pytest
import torch

from nat_tasks.cls.architectures import build_classifier
from .train_helpers import assert_one_line_error, run_tool, write_cifar10, write_config


@pytest.fixture(scope="module")
def checkpoint_setup(tmp_path_factory):
    """A NAT config on tiny CIFAR data, a target checkpoint in our format, a plain adversary state_dict."""
    tmp = tmp_path_factory.mktemp("eval")
    data = write_cifar10(str(tmp / "data"))
    torch.manual_seed(0)
    torch.save(build_classifier("small_cnn", 10).state_dict(), tmp / "adversary.pth")
    target = build_classifier("small_cnn", 10)
    torch.save(dict(meta=dict(epoch=1), state_dict={f"classifier.{k}": v for k, v in target.state_dict().items()}),
               tmp / "epoch_1.pth")
    config = write_config(tmp / "nat.py", base="cifar10_preact18_nat.py", data_root=data,
                          model=dict(nasty=dict(adversary=dict(arch="small_cnn", checkpoint=str(tmp / "adversary.pth")))))
    return tmp, config


def evaluate(config, checkpoint, out, *args):
    return run_tool("eval_cls.py", config, checkpoint, "--n-examples", 20, "--batch-size", 10, "--device", "cpu",
                    "--out", out, *args)


def test_eval_cli_writes_json_and_markdown_and_keeps_them_on_failure(checkpoint_setup, tmp_path):
    tmp, config = checkpoint_setup
    out = tmp_path / "out"
    proc = evaluate(config, tmp / "epoch_1.pth", out, "--attacks", "clean,pgd3,cw3,nat-adaptive3")
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((out / "eval_epoch_1.json").read_text())
    assert report["n_examples"] == 20 and report["threat"]["eps"] == pytest.approx(8 / 255)
    assert [r["attack"] for r in report["results"]] == ["clean", "pgd3", "cw3", "nat-adaptive3"]
    assert "eq. 14; w=0.006, tau=4.0" in report["results"][3]["settings"]
    assert all(len(r["flags"]) == 20 for r in report["results"])
    assert report["model_selection"].startswith("not recorded")  # meta without model_selection
    table = (out / "eval_epoch_1.md").read_text()
    assert "| pgd3 |" in table and "PGD-3 (CE), Linf eps=0.03137 (8/255)" in table and "95 % CI" in table
    assert "pgd3" in proc.stdout and "alpha=0.007843" in proc.stdout  # settings printed with the result
    before = (out / "eval_epoch_1.json").read_text()
    for bad_args, fragment in ((["--attacks", "clean,bogus"], "unknown classification attack 'bogus'"),
                               (["--eps", "2"], "eps=2.0 is outside [0,")):
        proc = run_tool("eval_cls.py", config, tmp / "epoch_1.pth", "--out", out, "--n-examples", 4, *bad_args)
        assert_one_line_error(proc, fragment)
    assert (out / "eval_epoch_1.json").read_text() == before
    assert not [f for f in os.listdir(out) if f.startswith(".tmp_")]


def test_nat_adaptive_reads_the_configs_nasty_settings(checkpoint_setup, tmp_path):
    tmp, config = checkpoint_setup
    settings = {}
    for weight in (None, 50.0):
        options = [] if weight is None else ["--cfg-options", f"model.nasty.weight={weight}", "model.nasty.tau=2.0"]
        out = tmp_path / str(weight)
        proc = evaluate(config, tmp / "epoch_1.pth", out, "--attacks", "nat-adaptive3", *options)
        assert proc.returncode == 0, proc.stderr[-3000:]
        (result,) = json.loads((out / "eval_epoch_1.json").read_text())["results"]
        settings[weight] = result["settings"]
    assert "w=0.006, tau=4.0, tau^2 on" in settings[None]  # the config's (NAT's defaults)
    assert "w=50.0, tau=2.0, tau^2 on" in settings[50.0]


@pytest.mark.parametrize("args,fragments", [
    (["--attacks", "nat-adaptive"], ["nat-adaptive needs a NAT config (model.nasty)"]),
    (["--attacks", "transfer-pgd3"], ["transfer-* attacks need --surrogate CONFIG:CHECKPOINT"]),
    (["--attacks", "pgd0"], ["attack 'pgd0': steps must be at least 1"]),
    (["--device", "tpu"], ["--device 'tpu'"]),
])
def test_mistakes_are_one_line_before_any_work(checkpoint_setup, tmp_path, args, fragments):
    tmp, _ = checkpoint_setup
    plain = write_config(tmp_path / "pgdat.py", data_root=str(tmp / "data"))
    proc = evaluate(plain, tmp / "nowhere.pth", tmp_path / "out", *args)  # the checkpoint is never read
    assert_one_line_error(proc, *fragments)


def test_an_old_nat_config_names_the_new_keys(checkpoint_setup, tmp_path):
    tmp, _ = checkpoint_setup
    old = write_config(tmp_path / "old.py", data_root=str(tmp / "data"),
                       model=dict(method=dict(type="nat", w=0.006), adversary=dict(arch="small_cnn", checkpoint="a.pth")))
    proc = evaluate(old, tmp / "epoch_1.pth", tmp_path / "out", "--attacks", "clean")
    assert_one_line_error(proc, "model.adversary was moved: use model.nasty.adversary")


# ---- --threat l0 ----------------------------------------------------------------------------------

def test_l0_evaluation_writes_the_same_report_with_iteration_and_query_counts(checkpoint_setup, tmp_path):
    tmp, config = checkpoint_setup
    out = tmp_path / "out"
    proc = evaluate(config, tmp / "epoch_1.pth", out, "--threat", "l0", "--k", 5,
                    "--attacks", "clean,spgd5,spgd-proj5,sparse-rs20,saa5q20")
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((out / "eval_epoch_1.json").read_text())
    assert report["threat"] == {"norm": "L0", "k": 5} and report["n_examples"] == 20
    assert [r["attack"] for r in report["results"]] == ["clean", "spgd5", "spgd-proj5", "sparse-rs20", "saa5q20"]
    assert all(len(r["flags"]) == 20 for r in report["results"])
    table = (out / "eval_epoch_1.md").read_text()
    assert "| spgd5 |" in table and "sPGD (unprojected), 5 it, patience 3" in table and "95 % CI" in table
    assert "Sparse-RS, 20 q, p_init=0.8, CE loss, L0 k=5 pixels" in table
    assert "sPGD unprojected (5 it) -> sPGD projected (5 it), patience 3 -> Sparse-RS (20 q" in proc.stdout
    assert "L0 k=5 pixels, seed 0" in proc.stdout


@pytest.mark.parametrize("args,fragment", [
    (["--threat", "l0"], "--threat l0 needs --k (the budget in pixel locations"),
    (["--threat", "l0", "--k", "0"], "k=0 must be a whole number of pixels, at least 1"),
    (["--threat", "l0", "--k", "1025"], "--k 1025 is more than the 32x32 = 1024 pixel locations"),
    (["--threat", "l0", "--k", "20", "--attacks", "clean,pgd20"], "attack 'pgd20' is an Linf attack, the threat"),
    (["--attacks", "spgd"], "attack 'spgd' is an L0 attack, the threat model is Linf"),
    (["--threat", "l0", "--k", "20", "--attacks", "spgd,sparse-l1"], "unknown classification attack 'sparse-l1'"),
    (["--k", "20"], "--k is the l0 budget: add --threat l0"),
    (["--threat", "l2"], "--threat 'l2': expected linf or l0"),
    (["--threat", "l0", "--k", "20", "--eps", "0.1"], "--eps/--alpha set the Linf threat model"),
])
def test_l0_mistakes_are_one_line(checkpoint_setup, tool_error, args, fragment):
    tmp, config = checkpoint_setup
    err = tool_error("eval_cls", config, tmp / "epoch_1.pth", "--n-examples", 4, "--device", "cpu",
                     "--out", tmp / "never", *args)
    lines = [line for line in err.strip().splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], err
    assert not (tmp / "never").exists()
