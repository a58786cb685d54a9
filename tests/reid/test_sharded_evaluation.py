"""``tools/test_reid.py --launcher pytorch`` (2 CPU processes under torchrun, gloo): the processes
share the clean features and the attacked query batches, process 0 ranks them and writes, and the
report is the one of one process, every score and the worst case included; a sharded run continues
a 1-process run's saved state (``--resume``)."""
import json

import pytest
import torch

from nat_tasks.core.checkpoint import safe_load
from nat_tasks.reid.attacks import build_attack
from nat_tasks.reid.config import config_file
from nat_tasks.reid.distributed import PieceShare
from nat_tasks.reid.robustness import attacked_query_features
from nat_tasks.runtime.eval_store import EvalStore
from nat_tasks.runtime.preemption import PREEMPTED_EXIT

from .test_attacks import Pixel
from .test_cli import one_line_error
from .test_resume import ATTACK


def test_each_process_attacks_its_batches_as_one_process_does(tmp_path):
    """Process r of 2 saves the batches b with b % 2 == r and nothing else; each is the batch of
    one process (SMA: a random start seeded by the batch)."""
    values, pids = torch.linspace(0.2, 0.8, 10), torch.arange(10) // 2
    loader = [{"img": values[i:i + 2, None, None, None]} for i in range(0, 10, 2)]
    attack = build_attack("sma", eps=8 / 255, alpha=2 / 255, steps=2)
    one = attacked_query_features(Pixel(), loader, attack, values[:, None], pids, "cpu", seed=3)
    for rank in (0, 1):
        folder = tmp_path / str(rank)
        assert attacked_query_features(Pixel(), loader, attack, values[:, None], pids, "cpu",
                                       seed=3, store=EvalStore(str(folder)),
                                       share=PieceShare(rank, 2)) is None
        saved = pieces(folder)
        assert [name.split(".")[1] for name in saved] == [f"batch{b}" for b in range(rank, 5, 2)]
        for name, (features,) in saved.items():
            b = int(name.split(".")[1][5:])
            assert torch.equal(features, one[2 * b:2 * b + 2]), name


def assert_same_pieces(one, other):
    """Two evaluation states hold the same pieces, bit for bit; returns their names."""
    saved_one, saved_other = pieces(one), pieces(other)
    assert saved_other.keys() == saved_one.keys()
    for name, tensors in saved_one.items():
        assert all(torch.equal(a, b) for a, b in zip(tensors, saved_other[name], strict=True)), name
    return list(saved_one)


@pytest.fixture
def common(market_root, vanilla_checkpoint):
    """SMA (a random start per batch) at one budget, batches of 4 queries: several batches."""
    return [config_file("market1501_resnet50_vanilla"), vanilla_checkpoint, "--root", market_root,
            *ATTACK, "--attack-eps", "4/255"]


def pieces(folder):
    """``{file name: tensors}`` of an evaluation state."""
    def tensors(value):
        return list(value.values()) if isinstance(value, dict) else [value]
    return {path.name: tensors(safe_load(str(path))) for path in sorted(folder.glob("*.pt"))}


def test_two_processes_report_the_numbers_of_one(common, test_reid, torchrun, counted_batches,
                                                 tmp_path):
    test_reid([*common, "--device", "cpu", "--out", tmp_path / "one"])
    assert counted_batches["n"] >= 3  # batches for both processes, one of them twice
    log = torchrun("test_reid", *common, "--out", tmp_path / "two")
    # process 0 alone prints and writes
    assert log.count("2 processes: process r attacks the query batches b with b % 2 == r") == 1
    assert log.count("written:") == 1 and log.count("evaluating ") == 1
    one = json.loads((tmp_path / "one.json").read_text())
    two = json.loads((tmp_path / "two.json").read_text())
    assert set(two["models"][0]["results"]) == {"clean", "sma", "worst"}
    assert two["models"] == one["models"]  # every mAP / Rank-1, interval and the worst case
    assert len(assert_same_pieces(tmp_path / "one.state", tmp_path / "two.state")) \
        == 2 + counted_batches["n"]  # the clean features and every batch


def test_a_sharded_run_resumes_a_stopped_one(common, test_reid, torchrun, counted_batches,
                                             tmp_path, capsys):
    out = ["--out", tmp_path / "run"]
    test_reid([*common, "--device", "cpu", "--out", tmp_path / "straight"])
    counted_batches.update(n=0, kill_at=2)
    with pytest.raises(SystemExit) as stopped:
        test_reid([*common, "--device", "cpu", *out])
    assert stopped.value.code == PREEMPTED_EXIT
    capsys.readouterr()
    log = torchrun("test_reid", *common, *out, "--resume")
    assert log.count("continuing the evaluation state") == 1 and "(4 pieces saved)" in log  # clean, 2 batches
    straight = json.loads((tmp_path / "straight.json").read_text())
    assert json.loads((tmp_path / "run.json").read_text())["models"] == straight["models"]
    assert_same_pieces(tmp_path / "straight.state", tmp_path / "run.state")


@pytest.mark.parametrize("extra, message", [
    (["--launcher", "pytorch"], "--launcher pytorch runs under torchrun"),
    (["--launcher", "pytorch", "--device", "cuda:1"], "each process uses the GPU of its LOCAL_RANK"),
])
def test_launcher_mistakes_are_one_line(common, extra, message, test_reid, capsys):
    assert message in one_line_error(capsys, test_reid, [*common, *extra])
