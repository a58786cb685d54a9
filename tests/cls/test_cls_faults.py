"""Classification under faults: a disk that fills while a checkpoint or a report is written, a run
that collapses to chance, corrupt and out-of-range data. Each is one line (or a warning) saying what
is intact and how to continue, and the run continues from there."""
import errno
import glob
import os
import pickle
import shutil

import pytest

from nat_tasks.cls import load_cls_config, train
from nat_tasks.cls.data.data import CIFAR10, ImageNet100
from nat_tasks.core.errors import NatError
from nat_tasks.core.checkpoint import safe_load
from .train_helpers import write_cifar10, write_config


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, small_cnn_file):
    """Tiny CIFAR-10 data, a NAT config with model.nasty.weight=1e6 and a PGD-AT config."""
    tmp = tmp_path_factory.mktemp("faults")
    data = write_cifar10(str(tmp / "data"))
    adversary = dict(arch="small_cnn", checkpoint=str(small_cnn_file))
    nat = write_config(tmp / "nat.py", base="cifar10_preact18_nat.py", data_root=data, train_cfg=dict(max_epochs=3),
                       model=dict(method=dict(steps=1), nasty=dict(weight=1e6, adversary=adversary)))
    pgd_at = write_config(tmp / "pgdat.py", data_root=data, model=dict(method=dict(steps=1)))
    return tmp, data, nat, pgd_at


@pytest.fixture(scope="module")
def collapsed_run(tiny):
    """NAT with model.nasty.weight=1e6: the nasty term dominates and the model stays at chance."""
    tmp, _, nat, _ = tiny
    return train(load_cls_config(nat, work_dir=str(tmp / "nat_1e6")))


def full_disk_on(monkeypatch, name, after=0):
    """Make the (after+1)-th flush to disk of a file called ``name`` fail with ENOSPC (the atomic
    writers fsync their temporary file before renaming it over ``name``)."""
    fsync, seen = os.fsync, []

    def failing(fd):
        if os.readlink(f"/proc/self/fd/{fd}").endswith(name):
            seen.append(fd)
            if len(seen) == after + 1:
                raise OSError(errno.ENOSPC, "No space left on device")
        return fsync(fd)

    monkeypatch.setattr(os, "fsync", failing)


def test_a_full_disk_while_saving_a_checkpoint_is_one_line_and_the_run_resumes(tiny, tmp_path, monkeypatch,
                                                                                 tool_error, load_tool):
    _, _, _, pgd_at = tiny
    work_dir = tmp_path / "run"
    full_disk_on(monkeypatch, "epoch_2.pth")
    err = tool_error("train_cls", pgd_at, "--work-dir", work_dir)
    assert "Traceback" not in err
    assert err.splitlines()[-1] == (f"error: no space left on {work_dir / 'epoch_2.pth'}; the last complete "
                                    f"checkpoint {work_dir / 'epoch_1.pth'} is intact; free space and rerun the "
                                    "same command with --resume")
    assert not glob.glob(str(work_dir / ".tmp_*"))
    monkeypatch.undo()
    load_tool("train_cls").main([pgd_at, "--work-dir", str(work_dir), "--resume"])
    assert safe_load(work_dir / "epoch_2.pth")["meta"]["epoch"] == 2


def test_a_run_at_chance_warns_with_the_key_and_its_best_checkpoint_says_so(collapsed_run, tiny):
    log = open(glob.glob(os.path.join(collapsed_run, "*", "*.log"))[0]).read()
    assert "dominates the loss" in log and "lower model.nasty.weight" in log
    assert "validation chance-level at epoch 1: clean_acc" in log
    best = glob.glob(os.path.join(collapsed_run, "best_*.pth"))
    assert len(best) == 1
    assert f"the best checkpoint {best[0]} is a chance-level model" in log
    assert safe_load(best[0])["meta"]["health"].startswith("chance-level at epoch")


def test_eval_prints_its_table_before_a_full_disk_and_resume_rebuilds_the_report(
        collapsed_run, tiny, tmp_path, monkeypatch, capsys, load_tool):
    _, _, nat, _ = tiny
    best = glob.glob(os.path.join(collapsed_run, "best_*.pth"))[0]
    stem = tmp_path / ("eval_" + os.path.basename(best)[:-4])
    argv = [nat, best, "--attacks", "clean", "--n-examples", "20", "--batch-size", "10", "--device", "cpu",
            "--out", str(tmp_path)]
    full_disk_on(monkeypatch, stem.name + ".json")
    with pytest.raises(SystemExit) as exit_info:
        load_tool("eval_cls").main(argv)
    out, err = capsys.readouterr()
    assert exit_info.value.code == 2 and "Traceback" not in err
    assert "| clean | 5.00 |" in out  # the numbers are shown although the report cannot be written
    assert err.splitlines()[-1] == (
        f"error: no space left on {stem}.json; the table is printed above and the evaluation state "
        f"{stem}.state.json is complete; free space and rerun the same command with --resume to rebuild the "
        "report (no attack runs again)")
    assert not os.path.exists(f"{stem}.json")
    monkeypatch.undo()
    load_tool("eval_cls").main(argv + ["--resume"])
    out = capsys.readouterr().out
    assert "(1 of 1 attacks complete)" in out and "warning: the trainer saved this checkpoint chance-level" in out
    assert os.path.isfile(f"{stem}.json") and os.path.isfile(f"{stem}.md")


def test_a_full_disk_mid_evaluation_keeps_the_finished_batches(collapsed_run, tiny, tmp_path, monkeypatch,
                                                               tool_error):
    _, _, nat, _ = tiny
    best = glob.glob(os.path.join(collapsed_run, "best_*.pth"))[0]
    stem = tmp_path / ("eval_" + os.path.basename(best)[:-4])
    full_disk_on(monkeypatch, stem.name + ".state.json", after=1)  # the state after batch 1 is written
    err = tool_error("eval_cls", nat, best, "--attacks", "clean", "--n-examples", "20", "--batch-size", "10",
                     "--device", "cpu", "--out", tmp_path)
    assert err.splitlines()[-1] == (f"error: no space left on {stem}.state.json; the evaluation state "
                                    f"{stem}.state.json holds every batch finished so far; free space and rerun "
                                    "with --resume")


# ---- corrupt and out-of-range data -----------------------------------------------------------------

def test_a_label_out_of_range_names_the_file_and_index_before_training(tiny, tmp_path, tool_error):
    _, data, _, pgd_at = tiny
    broken = tmp_path / "data"
    shutil.copytree(data, broken)
    path = broken / "cifar-10-batches-py" / "data_batch_3"
    with open(path, "rb") as f:
        batch = pickle.load(f, encoding="bytes")
    batch[b"labels"][7] = 12
    with open(path, "wb") as f:
        pickle.dump(batch, f, protocol=2)
    err = tool_error("train_cls", pgd_at, "--work-dir", tmp_path / "w", "--data-root", broken)
    assert err.splitlines()[-1] == (f"error: {path}: label 12 at index 7 is outside the 10 classes [0, 9] "
                                    "(1 such labels): wrong file or wrong data set type")
    assert not (tmp_path / "w").exists() or not glob.glob(str(tmp_path / "w" / "*.pth"))


def test_a_truncated_cifar_batch_is_one_line(tiny, tmp_path):
    _, data, _, _ = tiny
    broken = tmp_path / "data"
    shutil.copytree(data, broken)
    path = broken / "cifar-10-batches-py" / "test_batch"
    path.write_bytes(path.read_bytes()[:1000])  # a download cut short
    with pytest.raises(NatError) as err:
        CIFAR10(broken, split="test")
    assert str(err.value).startswith(f"cannot read CIFAR batch {path}: ") and "\n" not in str(err.value)


def test_an_unreadable_jpeg_names_the_file(imagenet_root, tmp_path):
    tree = tmp_path / "imagenet"
    shutil.copytree(imagenet_root, tree)
    bad = sorted((tree / "val").glob("*/*.JPEG"))[1]
    bad.write_bytes(bad.read_bytes()[:200])  # truncated
    data = ImageNet100(tree, split="test", image_size=32)
    assert data[0]["inputs"].shape == (3, 32, 32)
    with pytest.raises(NatError) as err:
        data[1]
    assert str(err.value).startswith(f"cannot read image {bad} (") and str(err.value).endswith("replace or delete it")


def test_a_full_disk_while_a_sweep_writes_its_table_is_one_line(tiny, tmp_path, monkeypatch, tool_error):
    _, _, _, pgd_at = tiny
    full_disk_on(monkeypatch, "sweep.json")
    err = tool_error("sweep_cls", pgd_at, "--grid", "model.method.steps=1,2", "--seeds", "1", "--work-dir", tmp_path,
                     "--collect-only")
    assert err.splitlines()[-1] == (f"error: no space left on {tmp_path / 'sweep.json'}; every finished run's "
                                    "checkpoints are intact; free space and rerun the same command (finished runs "
                                    "are reused, interrupted ones resumed)")
