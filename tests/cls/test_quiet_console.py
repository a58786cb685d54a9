"""The tools' console (nat_tasks/runtime/console.py): a header, a bar and the results on the console,
mmengine's dumps and per-iteration lines in the run's log file only, all of it back with --verbose;
and the errors that come before any of it (a --cfg-options typo, a data tree with other classes)."""
import glob
import os

import pytest
from PIL import Image

from .train_helpers import CONFIGS, write_cifar10, write_config

DUMPS = ("System environment:", "Config:", "Epoch(train)")  # mmengine's env and config dumps, an iteration line


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("console")
    data = write_cifar10(str(tmp / "data"))
    return write_config(tmp / "tiny.py", data_root=data, model=dict(method=dict(steps=1)), train_cfg=dict(max_epochs=1))


def train(load_tool, capsys, config, work_dir, *options):
    """Run tools/train_cls.py in this process; returns (its console output, its log file's text)."""
    capsys.readouterr()
    load_tool("train_cls").main([config, "--work-dir", str(work_dir), "--device", "cpu", *options])
    captured = capsys.readouterr()
    (log_file,) = glob.glob(os.path.join(work_dir, "*", "*.log"))
    with open(log_file) as f:
        return captured.out + captured.err, f.read(), log_file


def test_the_console_shows_a_header_and_the_log_file_keeps_the_dumps(tiny_config, tmp_path, capsys, load_tool, one_thread):
    console, log, log_file = train(load_tool, capsys, tiny_config, tmp_path / "quiet")
    for dump in DUMPS:
        assert dump in log and dump not in console, dump
    assert f"log: {log_file}" in console and "device: cpu" in console and "train: 100%" in console
    assert "val (epoch 1): clean_acc" in console  # the validation's numbers, one line

    console, log, _ = train(load_tool, capsys, tiny_config, tmp_path / "verbose", "--verbose")
    for dump in DUMPS:
        assert dump in log and dump in console, dump


def test_a_cfg_options_typo_is_one_line_before_anything_else(tiny_config, tmp_path, capsys, load_tool):
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        load_tool("train_cls").main([tiny_config, "--work-dir", str(tmp_path / "w"),
                                     "--cfg-options", "model.method.stpes=2"])
    captured = capsys.readouterr()
    assert exit_info.value.code == 2 and captured.out == ""
    assert captured.err.strip().splitlines() == [
        f"error: --cfg-options model.method.stpes: {tiny_config} has no model.method.stpes; "
        "did you mean model.method.steps?"]
    assert not os.path.exists(tmp_path / "w")  # nothing ran


def test_a_new_cfg_options_key_unlike_any_is_a_setting(tmp_path):
    from nat_tasks.runtime import load_config

    (tmp_path / "c.py").write_text("model = dict(method=dict(type='pgdat', steps=1))\n")
    cfg = load_config(str(tmp_path / "c.py"), cfg_options={"model.method.include_clean": True})
    assert cfg.model.method.include_clean is True


def test_an_image_folder_with_other_classes_than_the_config_is_one_line(tmp_path, tool_error):
    for split in ("train", "val"):
        for wnid in ("n01440764", "n01443537"):
            os.makedirs(tmp_path / "in100" / split / wnid)
            for i in range(2):
                Image.new("RGB", (8, 8), (40 * i, 90, 10)).save(tmp_path / "in100" / split / wnid / f"{i}.JPEG")
    loader = dict(batch_size=2, num_workers=0, dataset=dict(data_root=str(tmp_path / "in100"), image_size=32,
                                                            val_size=0))
    config = tmp_path / "in100.py"
    config.write_text(f"_base_ = [{os.path.join(CONFIGS, 'imagenet100_vit_small_vanilla.py')!r}]\n"
                      f"model = dict(arch='small_cnn', image_size=32)\n"
                      f"train_dataloader = {loader!r}\nval_dataloader = {loader!r}\ntest_dataloader = {loader!r}\n")
    expected = [f"error: the config's model.num_classes is 100 but the ImageNet100 data at {tmp_path / 'in100'} "
                "has 2 classes: fix the data or set --cfg-options model.num_classes=2"]
    err = tool_error("train_cls", config, "--work-dir", tmp_path / "w", "--device", "cpu")
    assert [line for line in err.splitlines() if line.strip()] == expected
    # evaluating on that tree: the same line, before the checkpoint is read (there is none)
    err = tool_error("eval_cls", config, tmp_path / "none.pth", "--device", "cpu", "--out", tmp_path / "eval")
    assert [line for line in err.splitlines() if line.strip()] == expected
