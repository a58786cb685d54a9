"""Seeded sweeps (cls/demos/sweep.py, tools/sweep_cls.py): grid values parse like --cfg-options, every
(point, seed) trains in its own work dir, finished runs are reused, a crash is reported and the
sweep goes on, and the table holds best-seed (mean ± std) over seeds of the runs' own metrics."""
import json
import os
import re
import sys

import pytest

from nat_tasks.cls.demos import sweep
from nat_tasks.cls.demos.sweep import parse_grid, print_commands, run_name, run_sweep
from nat_tasks.core.errors import NatError

from .train_helpers import CONFIGS, write_config

MNIST_PGDAT = os.path.join(CONFIGS, "mnist_small_cnn_pgdat.py")


def test_grid_values_parse_like_cfg_options():
    grid = parse_grid(["model.nasty.weight=0,0.02,1e-3", "model.method.steps=3", "model.arch=small_cnn,resnet18",
                       "param_scheduler.0.milestones=[[8],[9,10]]", "model.method.include_clean=True,False"])
    assert grid == [("model.nasty.weight", [0, 0.02, 0.001]), ("model.method.steps", [3]),
                    ("model.arch", ["small_cnn", "resnet18"]), ("param_scheduler.0.milestones", [[8], [9, 10]]),
                    ("model.method.include_clean", [True, False])]
    assert isinstance(grid[0][1][0], int) and isinstance(grid[0][1][1], float)
    assert run_name({"model.nasty.weight": 0.02, "param_scheduler.0.milestones": [9, 10]}, 1) == \
        "model.nasty.weight=0.02,param_scheduler.0.milestones=[9,10],seed=1"
    for specs, message in ((["weight"], "expected KEY=VALUE"), (["=1,2"], "expected KEY=VALUE"),
                           (["randomness.seed=0,1"], "seeds are swept by --seeds"),
                           (["a=[8],[9]"], "write a list of list values as"), (["a=1", "a=2"], "given twice"), (["a=1,2,1"], "repeated"), ([], "--grid KEY=V1,V2")):
        with pytest.raises(NatError, match=message):
            parse_grid(specs)


def fake_run(work_dir, scores, best_epoch=None, key="robust_acc"):
    """A finished run's files as mmengine leaves them: ``scores`` = [(clean, robust) per epoch]; the
    last epoch is logged twice, the second time by a resumed run (a later timestamp folder)."""
    for stamp, epochs in (("20260101_000000", range(1, len(scores) + 1)), ("20260102_000000", [len(scores)])):
        os.makedirs(os.path.join(work_dir, stamp, "vis_data"))
        with open(os.path.join(work_dir, stamp, "vis_data", "scalars.json"), "w") as f:
            for epoch in epochs:
                clean, robust = scores[epoch - 1]
                if stamp.startswith("20260101") and epoch == len(scores):
                    clean, robust = -1.0, -1.0  # the interrupted run's entry: replaced by the resumed one's
                f.write(json.dumps(dict(loss=0.5, epoch=epoch, iter=3, step=3 * epoch)) + "\n")
                f.write(json.dumps(dict(clean_acc=clean, robust_acc=robust, time=0.1, step=epoch)) + "\n")
    open(os.path.join(work_dir, f"epoch_{len(scores)}.pth"), "w").close()
    if best_epoch:
        open(os.path.join(work_dir, f"best_{key}_epoch_{best_epoch}.pth"), "w").close()


def test_the_table_is_best_seed_then_mean_and_std_of_each_runs_metrics(tmp_path):
    grid = parse_grid(["model.method.steps=1,2"])
    options = ["train_cfg.max_epochs=2"]
    fake_run(tmp_path / run_name({"model.method.steps": 1}, 0), [(90.0, 30.0), (92.0, 28.0)], best_epoch=1)
    fake_run(tmp_path / run_name({"model.method.steps": 1}, 1), [(80.0, 20.0), (86.0, 25.0)], best_epoch=2)
    fake_run(tmp_path / run_name({"model.method.steps": 2}, 0), [(70.0, 10.0), (75.0, 12.0)])  # no best file
    os.makedirs(tmp_path / run_name({"model.method.steps": 2}, 1))  # started, never checkpointed
    commands = []
    print_commands(MNIST_PGDAT, grid, seeds=2, work_dir=str(tmp_path), cfg_options=options, device="cpu",
                   log=commands.append)
    assert len(commands) == 1 and "steps=2,seed=1 --cfg-options train_cfg.max_epochs=2 model.method.steps=2 " \
        "randomness.seed=1 --device cpu" in commands[0]  # only the run still to do
    print_commands(MNIST_PGDAT, grid, seeds=2, work_dir=str(tmp_path), cfg_options=options, launcher="pytorch",
                   nproc_per_node=4, train_args="--amp", log=commands.append)
    assert " -m torch.distributed.run --standalone --nproc_per_node 4 " in commands[1]
    assert "steps=2,seed=1 --amp --cfg-options" in commands[1]
    assert commands[1].endswith("randomness.seed=1 --launcher pytorch")

    report = run_sweep(MNIST_PGDAT, grid, seeds=2, work_dir=str(tmp_path), cfg_options=options, collect_only=True,
                       log=lambda *_: None)
    runs = {(r["point"]["model.method.steps"], r["seed"]): r for r in report["runs"]}
    assert runs[1, 0]["metrics"]["best"] == dict(epoch=1, clean_acc=90.0, robust_acc=30.0)
    assert runs[1, 1]["metrics"]["last"] == dict(epoch=2, clean_acc=86.0, robust_acc=25.0)
    assert runs[2, 0]["metrics"]["best"]["epoch"] == 2  # without a best file: the highest robust_acc
    assert runs[2, 1]["status"].startswith("failed: not run")
    markdown = (tmp_path / "sweep.md").read_text()
    # steps=1: best 30 and 25 robust (std 3.54), clean 90 and 86 (std 2.83); last 28 and 25, 92 and 86.
    assert "| 1 | best | 90.00 (88.00 ± 2.83) | 30.00 (27.50 ± 3.54) | 2/2 | - |" in markdown
    assert "| 1 | last | 92.00 (89.00 ± 4.24) | 28.00 (26.50 ± 2.12) | 2/2 | - |" in markdown
    assert re.search(r"\| 2 \| best \| 75.00 \| 12.00 \| 1/2 \| seed 1: failed: not run", markdown)
    assert (tmp_path / "sweep.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((tmp_path / "sweep.json").read_text())["rows"][0]["robust_acc"]["std"] == pytest.approx(
        3.5355, abs=1e-4)


def test_a_sweep_trains_each_run_reuses_finished_ones_and_reports_a_crash(cifar10_root, tmp_path, monkeypatch):
    config = write_config(tmp_path / "tiny.py", data_root=str(cifar10_root), train_cfg=dict(max_epochs=1),
                          model=dict(method=dict(steps=1)))
    grid = parse_grid(["model.method.alpha=0.01,5"])  # alpha=5 is refused when the run builds its model
    messages = []
    report = run_sweep(config, grid, seeds=1, work_dir=str(tmp_path / "sweep"), device="cpu", log=messages.append)
    ok, crashed = report["runs"]
    assert ok["status"] == "ok" and ok["metrics"]["last"]["epoch"] == 1 and "robust_acc" in ok["metrics"]["last"]
    assert crashed["status"] == "failed: exit status 2: method pgd_at: alpha=5 is outside (0, 1] (pixel units)"
    assert "alpha=5,seed=0: failed: exit status 2" in "\n".join(messages)
    assert "seed 0: failed: exit status 2: method pgd_at: alpha=5" in (tmp_path / "sweep" / "sweep.md").read_text()

    trained = []
    monkeypatch.setattr(sweep, "execute", lambda run: trained.append(run["point"]) or "crashed again")
    report = run_sweep(config, grid, seeds=1, work_dir=str(tmp_path / "sweep"), device="cpu", log=messages.append)
    assert trained == [{"model.method.alpha": 5}]  # the finished run was reused, the crashed one retried
    assert report["runs"][0]["metrics"] == ok["metrics"] and report["runs"][1]["status"] == "failed: crashed again"
    with pytest.raises(NatError, match="was trained with another config or --cfg-options"):  # not reused blindly
        run_sweep(config, grid, seeds=1, work_dir=str(tmp_path / "sweep"), cfg_options=["model.method.steps=2"])


def test_a_failed_attempt_is_one_line_from_its_own_output(tmp_path):
    run = dict(work_dir=str(tmp_path / "run"), max_epochs=1, recipe={}, command=[
        sys.executable, "-c", "import sys; print('error: an old attempt', file=sys.stderr); sys.exit(2)"])
    assert sweep.execute(run) == "exit status 2: an old attempt"
    run["command"] = [sys.executable, "-c", "import os, signal; print('epoch 1 of 2', flush=True); "
                      "os.kill(os.getpid(), signal.SIGTERM)"]
    assert sweep.execute(run) == "killed by signal 15; last output: epoch 1 of 2"  # not the old attempt's error
    run["command"] = [sys.executable, "-c", "print('done?')"]
    assert sweep.execute(run) == "no epoch_1.pth: done?"  # exit 0 without the last checkpoint is no success
    log = (tmp_path / "run" / "sweep_run.log").read_text().splitlines()
    assert log.count("error: an old attempt") == 1 and log[-1] == "done?"  # every attempt, appended


def test_tool_errors_are_one_line(tool_error, tmp_path):
    err = tool_error("sweep_cls", MNIST_PGDAT, "--grid", "model.method.steps", "--work-dir", tmp_path)
    assert err.strip() == "error: --grid 'model.method.steps': expected KEY=VALUE"
    err = tool_error("sweep_cls", os.path.join(CONFIGS, "mnist_small_cnn_nat.py"), "--grid", "model.nasty.weight=0,1",
                     "--cfg-options", f"model.nasty.adversary.checkpoint={tmp_path / 'none.pth'}", "--print-commands")
    assert err.strip() == (f"error: adversary checkpoint not found: {tmp_path / 'none.pth'}; train it first: "
                           "`python tools/train_cls.py configs/cls/mnist_small_cnn_vanilla.py`")
