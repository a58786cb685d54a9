"""``tools/test_reid.py --resume``: an evaluation stopped by SIGTERM mid-way (one line, exit status
75) or killed, then resumed, reports the numbers of an uninterrupted run; the saved state is only
continued with the same settings."""
import json
import os

import pytest
import torch

from nat_tasks.core.errors import NatError
from nat_tasks.reid.config import config_file
from nat_tasks.runtime.eval_store import open_store
from nat_tasks.runtime.preemption import PREEMPTED_EXIT

# SMA draws a random start: a resumed batch must draw what it drew in one run. Batches of 4 queries.
ATTACK = ["--attack", "sma", "--attack-steps", 2, "--batch-size", 4, "--num-instances", 4]


def test_stopped_and_resumed_gives_the_uninterrupted_numbers(
        market_root, vanilla_checkpoint, test_reid, counted_batches, tmp_path, capsys):
    common = [config_file("market1501_resnet50_vanilla"), vanilla_checkpoint, "--root", market_root,
              "--device", "cpu", *ATTACK]
    test_reid([*common, "--attack-eps", "4/255", "--out", tmp_path / "straight"])
    batches = counted_batches["n"]
    assert batches >= 3  # several query batches, so the stop falls mid-column
    capsys.readouterr()

    out = ["--attack-eps", "4/255", "--out", tmp_path / "stopped"]
    counted_batches.update(n=0, kill_at=2)
    with pytest.raises(SystemExit) as stopped:
        test_reid([*common, *out])
    assert stopped.value.code == PREEMPTED_EXIT
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [f"stopped by SIGTERM after query batch 2 of {batches} under SMA 4/255-2: saved "
                     f"the evaluation state {tmp_path / 'stopped'}.state; to continue, rerun the "
                     f"same command with --resume (exit status {PREEMPTED_EXIT})"]
    assert not (tmp_path / "stopped.json").exists()

    with pytest.raises(SystemExit) as refused:  # without --resume: neither lost nor mixed
        test_reid([*common, *out])
    assert refused.value.code == 2 and "holds an unfinished evaluation: add --resume" in \
        capsys.readouterr().err
    with pytest.raises(SystemExit) as other:  # another budget is another evaluation
        test_reid([*common, "--attack-eps", "2/255", "--out", tmp_path / "stopped", "--resume"])
    assert other.value.code == 2 and "was made with other settings (attacks[0].eps: 0.0156" in \
        capsys.readouterr().err

    counted_batches.update(n=0, kill_at=None)
    test_reid([*common, *out, "--resume"])
    assert counted_batches["n"] == batches - 2  # the two saved batches were read back
    straight = json.loads((tmp_path / "straight.json").read_text())
    resumed = json.loads((tmp_path / "stopped.json").read_text())
    assert resumed["models"] == straight["models"]  # every score, the worst case included
    assert set(resumed["models"][0]["results"]) == {"clean", "sma", "worst"}

    counted_batches["n"] = 0  # finished: --resume rebuilds the report without attacking
    test_reid([*common, *out, "--resume"])
    assert counted_batches["n"] == 0
    assert json.loads((tmp_path / "stopped.json").read_text())["models"] == straight["models"]
    test_reid([*common, *out])  # finished, without --resume: starts afresh
    assert counted_batches["n"] == batches


def test_store_pieces_and_manifest(tmp_path):
    folder = str(tmp_path / "state")
    settings = {"seed": 0, "attacks": [{"kind": "fna", "eps": 0.5}]}
    store = open_store(folder, settings, resume=False).within("model0")
    computed = []
    value = store.cached("x", lambda: computed.append(1) or {"feats": torch.arange(3.0)})
    again = open_store(folder, settings, resume=True, log=lambda _: None).within("model0")
    assert torch.equal(again.cached("x", lambda: computed.append(1))["feats"], value["feats"])
    assert computed == [1]  # read back, not computed again
    assert os.path.exists(os.path.join(folder, "model0.x.pt"))
    notes = []  # the demos' mode: pieces of other settings are dropped, with a note
    open_store(folder, {**settings, "seed": 1}, resume="auto", log=notes.append)
    assert notes == [f"{folder} holds another evaluation (seed: 0 -> 1): starting afresh"]
    assert not os.path.exists(os.path.join(folder, "model0.x.pt"))
    with open(os.path.join(folder, "settings.json"), "w") as f:
        f.write("{not json")
    with pytest.raises(NatError, match="cannot read the evaluation state .* delete its folder"):
        open_store(folder, settings, resume=True)


def test_a_full_disk_mid_evaluation_says_what_is_kept(market_root, vanilla_checkpoint, test_reid,
                                                      monkeypatch, tmp_path, capsys):
    import errno

    import nat_tasks.runtime.eval_store as eval_store

    saves = []

    def full_after_two(value, path):
        saves.append(path)
        if len(saves) > 2:  # the clean features fit, the first attacked batch does not
            raise OSError(errno.ENOSPC, "No space left on device", path)
        return atomic_save(value, path)

    atomic_save = eval_store.atomic_save
    monkeypatch.setattr(eval_store, "atomic_save", full_after_two)
    with pytest.raises(SystemExit) as full:
        test_reid([config_file("market1501_resnet50_vanilla"), vanilla_checkpoint, "--root",
                   market_root, "--device", "cpu", *ATTACK, "--attack-eps", "4/255",
                   "--out", tmp_path / "full"])
    assert full.value.code == 2
    state = tmp_path / "full.state"
    assert capsys.readouterr().err == (
        f"error: no space left on {saves[-1]}; the evaluation state {state} holds every piece "
        "finished so far; free space and rerun the same command with --resume\n")
    assert sorted(p.name for p in state.glob("*.pt")) == ["model0.clean_gallery.pt",
                                                          "model0.clean_query.pt"]
