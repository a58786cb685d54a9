"""The runtime layer every tool stands on: config loading, devices, seeding, result files, set-up."""
import json
import os
import random
import warnings

import numpy as np
import pytest
import torch

from nat_tasks.core.errors import NatError
from nat_tasks.runtime import (load_config, markdown_table, resolve_device, seed_everything,
                               select_runner_device, tool_main, write_results)


def test_load_config_merges_options_and_names_the_work_dir(tmp_path, monkeypatch):
    (tmp_path / "base.py").write_text("model = dict(depth=18, width=1)\n")
    (tmp_path / "run_a.py").write_text("_base_ = './base.py'\nmodel = dict(width=2)\n")
    cfg = load_config(str(tmp_path / "run_a.py"), cfg_options={"model.depth": 50})
    assert (cfg.model.depth, cfg.model.width) == (50, 2)
    assert cfg.work_dir == os.path.join("work_dirs", "run_a")
    assert load_config(str(tmp_path / "run_a.py"), work_dir="w").work_dir == "w"


@pytest.mark.parametrize("content, expected", [
    (None, "config file not found"),
    ("model = dict(\n", "cannot read config"),
    ("_base_ = './nowhere.py'\n", "cannot read config"),
])
def test_load_config_errors_are_one_line(tmp_path, content, expected):
    path = tmp_path / "c.py"
    if content is not None:
        path.write_text(content)
    with pytest.raises(NatError) as err:
        load_config(str(path))
    assert expected in str(err.value) and "\n" not in str(err.value).strip()


def test_a_bad_override_is_one_line(tmp_path):
    (tmp_path / "c.py").write_text("lr = 0.1\n")
    with pytest.raises(NatError, match=r"--cfg-options .*lr.x.*TypeError"):
        load_config(str(tmp_path / "c.py"), cfg_options={"lr.x": 1})


def test_devices(monkeypatch):
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(NatError, match="expected cpu, cuda or cuda:N"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(NatError, match="no CUDA device"):
            resolve_device("cuda:0")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    select_runner_device("cuda:1")
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "1"
    select_runner_device("cpu")
    assert os.environ["CUDA_VISIBLE_DEVICES"] == ""


def test_seed_everything_repeats_every_stream():
    def draw():
        return random.random(), float(np.random.rand()), float(torch.rand(1))
    seed_everything(3)
    first = draw()
    seed_everything(3)
    assert draw() == first


def test_results_are_json_and_markdown(tmp_path):
    rows = [dict(attack="pgd20", accuracy=41.234, n=10)]
    table = markdown_table(rows, [("attack", "attack"), ("accuracy", "accuracy (%)"), ("n", "n")])
    assert table == "| attack | accuracy (%) | n |\n|---|---|---|\n| pgd20 | 41.23 | 10 |\n"
    paths = write_results(str(tmp_path / "out" / "report"), dict(results=rows), table)
    assert json.loads(open(paths[0]).read()) == dict(results=rows)
    assert open(paths[1]).read() == table
    assert sorted(os.listdir(tmp_path / "out")) == ["report.json", "report.md"]  # no temporary left


def test_tool_main_quiets_noise_and_turns_errors_into_one_line(capsys):
    @tool_main
    def main(argv=None):
        warnings.warn("pkg_resources is deprecated as an API")
        raise NatError("bad input")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        with pytest.raises(SystemExit) as exit_info:
            main([])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == "error: bad input\n"
    assert not [w for w in caught if "pkg_resources" in str(w.message)]
