"""A library that prints (torchreid) under ``console.library_output``: every line in the log file;
on the console its result lines and a bar in place of its progress lines, or everything with
--verbose. (The mmengine side is tested on a real training: tests/cls/test_quiet_console.py.)"""
import pytest

from nat_tasks.runtime import console

LINES = ["=> Loading train (source) dataset", "  # source ids      : 8",
         "epoch: [1/2][1/2]\ttime 0.1 (0.1)\teta 0:00:01", "epoch: [1/2][2/2]\ttime 0.1 (0.1)\teta 0:00:01",
         "** Results (market1501) ** mAP: 12.5%  Rank-1: 25.0%", "epoch: [2/2][2/2]\ttime 0.1 (0.1)\teta 0:00:00"]


@pytest.fixture
def in_a_tool(monkeypatch):
    monkeypatch.setitem(console._state, "installed", True)
    monkeypatch.setitem(console._state, "verbose", False)


def run(tmp_path, capsys):
    capsys.readouterr()
    with console.library_output(str(tmp_path / "logs" / "train.log")):
        for line in LINES:
            print(line)
    out = capsys.readouterr()
    return out.out, out.err, (tmp_path / "logs" / "train.log").read_text()


def test_a_library_s_lines_go_to_the_log_its_progress_to_a_bar(tmp_path, capsys, in_a_tool):
    out, err, log = run(tmp_path, capsys)
    assert log == "\n".join(LINES) + "\n"
    assert out.splitlines() == [LINES[4]]  # the result line only
    assert "train: 100%" in err and "4/4" in err and "epoch 2/2" in err  # 2 epochs x 2 batches


def test_verbose_prints_everything_and_the_log_still_has_it(tmp_path, capsys, in_a_tool):
    console.set_verbose(True)
    out, err, log = run(tmp_path, capsys)
    assert out == log == "\n".join(LINES) + "\n" and err == ""


def test_outside_a_tool_the_library_prints_as_it_does(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(console._state, "installed", False)
    out, _, log = run(tmp_path, capsys)
    assert out == log == "\n".join(LINES) + "\n"
