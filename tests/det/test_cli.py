"""The train and test command lines end to end, checkpoints and resume, and bad inputs."""
import json
import os
import shutil

import pytest
import torch

from nat_tasks.core.checkpoint import safe_load

from .conftest import TINY_EPOCHS, build_detector, run_tool, tiny_config_text
from .helpers import load_tool

DAG_MAX_FRACTION_OF_CLEAN = 0.5


def test_test_cli_attacks_lower_map_and_write_results(trained_tiny, tmp_path):
    config, _, checkpoint = trained_tiny
    out = tmp_path / "results.json"
    result = run_tool("test", config, checkpoint, "--attack", "all", "--steps", "5", "--dag-steps", "20",
                      "--ci", "20", "--checklist",
                      "--work-dir", str(tmp_path), "--out", str(out), "--device", "cpu")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(out.read_text())
    rows = summary["results"]
    tog = ["tog-vanishing", "tog-fabrication", "tog-mislabeling", "tog-untargeted"]
    assert list(rows) == ["none", "cls", "loc", "dag", "rap", *tog, "cls@4", "cls@16", "cls@32", "cls@255",
                          "cls-10", "cls-20"]
    clean = rows["none"]["mAP"]
    assert clean > 20, f"the tiny detector did not learn: clean mAP {clean}"
    # Mislabeling relabels only the anchors matched to the clean detections; the others keep reporting
    # the object, so its mAP need not fall (on this detector it rose above clean: flagged in the table).
    for attack in ("cls", "loc", "dag", "rap", "tog-vanishing", "tog-fabrication", "tog-untargeted"):
        assert rows[attack]["mAP"] < clean - 1, (attack, rows)
        assert rows[attack]["images_per_s"] > 0
    # The worst case per image runs over clean and the attacks at eps 8 (not the checklist's budgets).
    worst = summary["worst_case"]
    assert sum(worst["from"].values()) == worst["n_images"] == 24
    assert set(worst["from"]) <= {"none", "cls", "loc", "dag", "rap", *tog, "cls-10", "cls-20"}
    assert worst["mAP"] <= rows["dag"]["mAP"] and worst["mAP"] < clean - 1, summary
    low, high = worst["mAP_ci95"]
    assert low <= worst["mAP"] <= high
    # Dense DAG removes most true positives even in 20 iterations (see the README for the figures).
    assert rows["dag"]["mAP"] < DAG_MAX_FRACTION_OF_CLEAN * clean, rows
    for attack, row in rows.items():
        low, high = row["mAP_ci95"]
        assert row["n_images"] == 24 and low <= row["mAP"] <= high, (attack, row)
    assert [check["name"] for check in summary["checklist"]] == [
        "A_cls mAP falls with eps", "unbounded A_cls (eps 255) reaches ~0 mAP",
        "more A_cls steps do not help the defence"]
    table = (tmp_path / "results.md").read_text()
    assert "A_cls" in table and "DAG" in table and "RAP" in table and "TOG-vanishing" in table
    assert "| worst case |" in table
    assert "Gradient-masking checklist" in table and "bootstrap over the n test images" in table
    # Another batching (as a sharded or resumed run has) attacks every image alike: the same mAP.
    rebatched = tmp_path / "rebatched.json"
    result = run_tool("test", config, checkpoint, "--attack", "cls", "--steps", "5", "--out", str(rebatched),
                      "--work-dir", str(tmp_path), "--device", "cpu",
                      "--cfg-options", "test_dataloader.batch_size=5")
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(rebatched.read_text())["results"]["cls"]["mAP"] == rows["cls"]["mAP"]


def test_train_cli_mtd_nat_logs_the_nasty_loss(trained_tiny, tmp_path):
    config, _, checkpoint = trained_tiny
    nat_config = tmp_path / "tiny_mtd_nat.py"
    nat_config.write_text(f"_base_ = {config!r}\n" + (
        "model = dict(mtd=dict(eps=8, alpha=8, steps=1), nasty=dict(weight=0.04, tau=4.0, "
        f"adversary=dict(config={config!r}, checkpoint={checkpoint!r})))\n"
        "train_cfg = dict(max_epochs=1, val_interval=1)\n"
        "default_hooks = dict(logger=dict(interval=1))\n"))
    work_dir = tmp_path / "work"
    result = run_tool("train", str(nat_config), "--work-dir", str(work_dir), "--device", "cpu")
    assert result.returncode == 0, result.stderr[-3000:]
    log = "".join(p.read_text() for p in work_dir.rglob("*.log"))
    assert "loss_nasty" in log and "loss_cls" in log
    saved = safe_load(work_dir / "epoch_1.pth")["state_dict"]
    assert not any("adversary" in key for key in saved)


def test_resume_reproduces_the_uninterrupted_run(trained_tiny, tmp_path):
    config, work_dir, _ = trained_tiny
    half = TINY_EPOCHS // 2
    result = run_tool("train", config, "--work-dir", str(tmp_path), "--device", "cpu",
                      "--resume", os.path.join(work_dir, f"epoch_{half}.pth"))
    assert result.returncode == 0, result.stderr[-3000:]
    resumed = safe_load(tmp_path / f"epoch_{TINY_EPOCHS}.pth")
    straight = safe_load(os.path.join(work_dir, f"epoch_{TINY_EPOCHS}.pth"))
    assert resumed["meta"]["epoch"] == straight["meta"]["epoch"] == TINY_EPOCHS
    for key, value in straight["state_dict"].items():
        torch.testing.assert_close(resumed["state_dict"][key], value, rtol=1e-5, atol=1e-6, msg=key)


def _one_line_error(capsys, tool, *args):
    with pytest.raises(SystemExit) as exit_info:
        load_tool(tool).main(list(args))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    return err


def _tree_copy(voc_root, tmp_path):
    root = tmp_path / "VOCdevkit"
    shutil.copytree(voc_root, root)
    return str(root) + "/"


def test_bad_inputs_are_one_line_errors(trained_tiny, voc_root, tmp_path, capsys):
    config, _, checkpoint = trained_tiny
    # Missing VOC tree.
    missing = tmp_path / "missing.py"
    missing.write_text(tiny_config_text(str(tmp_path / "nowhere") + "/"))
    assert "VOC image list not found" in _one_line_error(capsys, "train", str(missing), "--device", "cpu")
    assert "VOC image list not found" in _one_line_error(capsys, "test", str(missing), checkpoint)
    # Malformed XML.
    broken_root = _tree_copy(voc_root, tmp_path)
    with open(os.path.join(broken_root, "VOC2007", "Annotations", "000003.xml"), "w") as f:
        f.write("<annotation><object><name>boat</name>")
    broken = tmp_path / "broken.py"
    broken.write_text(tiny_config_text(broken_root))
    assert "malformed VOC annotation" in _one_line_error(capsys, "train", str(broken), "--device", "cpu")
    # Classes of the config that no annotation names.
    other_classes = tmp_path / "other_classes.py"
    other_classes.write_text(f"_base_ = {config!r}\n"
                             "train_dataloader = dict(dataset=dict(metainfo=dict(classes=('cat', 'dog'))))\n")
    assert "no object of the classes" in _one_line_error(capsys, "train", str(other_classes))
    # Missing adversary checkpoint: tells which config to train first.
    no_adversary = tmp_path / "no_adversary.py"
    no_adversary.write_text(f"_base_ = {config!r}\nmodel = dict(nasty=dict(weight=0.1, tau=2.0, adversary="
                            f"dict(config={config!r}, checkpoint='{tmp_path}/absent.pth')))\n")
    err = _one_line_error(capsys, "train", str(no_adversary), "--work-dir", str(tmp_path / "w1"))
    assert "adversary checkpoint not found" in err and f"train it first: `python tools/train.py {config}`" in err
    # A key of the old vocabulary names its replacement.
    old_key = tmp_path / "old_key.py"
    old_key.write_text(f"_base_ = {config!r}\nmodel = dict(nasty=dict(weight=0.1, adversary_precision=None, "
                       f"adversary=dict(config={config!r}, checkpoint={checkpoint!r})))\n")
    err = _one_line_error(capsys, "train", str(old_key), "--work-dir", str(tmp_path / "w3"))
    assert err == "error: model.nasty.adversary_precision was renamed: use model.nasty.adversary.precision"
    # A detector type of the old names.
    old_type = tmp_path / "old_type.py"
    old_type.write_text(f"_base_ = {config!r}\nmodel = dict(type='NatSSD')\n")
    err = _one_line_error(capsys, "train", str(old_type), "--work-dir", str(tmp_path / "w4"))
    assert err == "error: model type 'NatSSD' was renamed: use type='NatSingleStageDetector'"
    # Adversary with other classes.
    other_config = tmp_path / "other.py"
    other_config.write_text(f"_base_ = {config!r}\nmodel = dict(bbox_head=dict(num_classes=2))\n")
    other, _ = build_detector(str(other_config))
    other_checkpoint = tmp_path / "other.pth"
    torch.save({"state_dict": other.state_dict()}, other_checkpoint)
    wrong = tmp_path / "wrong.py"
    wrong.write_text(f"_base_ = {config!r}\nmodel = dict(nasty=dict(weight=0.1, tau=2.0, adversary="
                     f"dict(config={str(other_config)!r}, checkpoint={str(other_checkpoint)!r})))\n")
    assert "classes" in _one_line_error(capsys, "train", str(wrong), "--work-dir", str(tmp_path / "w2"))
    # Missing checkpoint to test.
    assert "checkpoint not found" in _one_line_error(capsys, "test", config, str(tmp_path / "x.pth"))


def test_test_tool_lets_idle_openmp_threads_sleep_unless_the_environment_says(monkeypatch):
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    load_tool("test")
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"  # the user's setting stands
    monkeypatch.delenv("OMP_WAIT_POLICY")
    load_tool("test")
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
