"""Faults are one line naming what is intact and how to continue: a full disk, a dead peer process,
a NaN loss, an error raised in a data-loader worker; never a traceback."""
import errno
import io
import logging
import os
import socket
import subprocess
import sys
import textwrap

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

import nat_tasks
from nat_tasks.core.errors import NatError, check_finite, cli_entry, on_fault
from nat_tasks.runtime import setup_tool
from nat_tasks.runtime.faults import training_faults

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(nat_tasks.__file__)))


def run_cli(capsys, fn):
    with pytest.raises(SystemExit) as exit_info:
        cli_entry(fn)()
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return exit_info.value.code, err


@pytest.mark.parametrize("code,reason", [(errno.ENOSPC, "no space left on"), (errno.EDQUOT, "disk quota exceeded on"),
                                         (errno.EROFS, "read-only file system at")])
def test_a_full_disk_is_one_line_naming_the_file(capsys, code, reason):
    def main():
        raise OSError(code, os.strerror(code), "/runs/a/report.json")

    status, err = run_cli(capsys, main)
    assert status == 2
    assert err == (f"error: {reason} /runs/a/report.json; the files written before this are intact; "
                   "free space and rerun the same command\n")


def test_on_fault_says_what_is_intact_and_names_the_folder_of_an_unnamed_write(capsys):
    def main():
        with on_fault("/runs/a", lambda: ("the state file is intact", "rerun with --resume")):
            raise OSError(errno.ENOSPC, "No space left on device")  # a write() names no file

    assert run_cli(capsys, main) == (2, "error: no space left on /runs/a; the state file is intact; "
                                        "free space and rerun with --resume\n")


def test_other_errors_are_not_disguised_as_faults():
    with pytest.raises(FileNotFoundError):
        cli_entry(lambda: open("/nonexistent/x"))()
    with pytest.raises(RuntimeError, match="shape mismatch"):
        cli_entry(lambda: (_ for _ in ()).throw(RuntimeError("shape mismatch")))()


def test_training_faults_name_the_last_complete_checkpoint(tmp_path, capsys):
    def fail():
        with training_faults(str(tmp_path)):
            raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "epoch_2.pth"))

    assert run_cli(capsys, fail)[1] == (f"error: no space left on {tmp_path / 'epoch_2.pth'}; no checkpoint was "
                                        f"complete yet in {tmp_path}; free space and rerun the same command\n")
    (tmp_path / "epoch_1.pth").write_bytes(b"weights")
    (tmp_path / "last_checkpoint").write_text(str(tmp_path / "epoch_1.pth"))
    assert run_cli(capsys, fail)[1] == (f"error: no space left on {tmp_path / 'epoch_2.pth'}; the last complete "
                                        f"checkpoint {tmp_path / 'epoch_1.pth'} is intact; free space and rerun the "
                                        "same command with --resume\n")


class _FullDisk(io.StringIO):
    def write(self, text):
        raise OSError(errno.ENOSPC, "No space left on device")


def test_a_log_line_on_a_full_disk_is_dropped_not_printed_as_a_traceback(capsys):
    setup_tool()  # what every tool does first
    logger = logging.getLogger("nat_tasks.tests.full_disk")
    logger.addHandler(logging.StreamHandler(_FullDisk()))
    logger.warning("epoch 2, iteration 7")
    assert capsys.readouterr().err == ""


def test_a_nan_loss_names_the_term_and_the_key():
    terms = dict(loss_ce=torch.tensor(2.3), loss_nasty=torch.tensor(float("-inf")))
    with pytest.raises(NatError) as err:
        check_finite(terms["loss_ce"] + terms["loss_nasty"], what="the nat training loss", terms=terms)
    assert str(err.value).startswith("the nat training loss became -inf (loss_nasty = -inf): training diverged "
                                     "(lower model.nasty.weight or the learning rate")
    terms = dict(loss_ce=torch.tensor(float("nan")))
    with pytest.raises(NatError, match=r"\(loss_ce = nan\): training diverged \(lower the learning rate"):
        check_finite(terms["loss_ce"], terms=terms)


class _Broken(Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, index):
        raise NatError(f"cannot read image /data/train/n01/{index}.JPEG")


def test_an_error_in_a_data_loader_worker_is_still_one_line(capsys):
    def main():
        next(iter(DataLoader(_Broken(), num_workers=1)))

    status, err = run_cli(capsys, main)
    assert (status, err) == (2, "error: cannot read image /data/train/n01/0.JPEG\n")


PEER = textwrap.dedent("""
    import os, signal, sys
    import torch, torch.distributed as dist
    from nat_tasks.core.errors import cli_entry, on_fault

    @cli_entry
    def main():
        dist.init_process_group("gloo")
        with on_fault(".", lambda: ("the last complete checkpoint epoch_1.pth is intact",
                                    "rerun the same torchrun command with --resume")):
            t = torch.ones(4)
            dist.all_reduce(t)
            if dist.get_rank() == 1:
                os.kill(os.getpid(), signal.SIGKILL)  # a dead worker: the OOM killer, a failed node
            for _ in range(3):
                dist.all_reduce(t)

    main()
""")


def test_a_dead_peer_is_one_line_naming_its_rank(tmp_path):
    """Two gloo processes started like torchrun starts them (siblings, RANK/LOCAL_RANK/... in their
    environment); rank 1 is killed between collectives: rank 0 names it and how to resume. (The
    trainers' ``training_faults`` is this ``on_fault`` with the run folder's checkpoint.)"""
    script = tmp_path / "peer.py"
    script.write_text(PEER)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = []
    for rank in range(2):
        env = dict(os.environ, RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", LOCAL_WORLD_SIZE="2",
                   MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), OMP_NUM_THREADS="1",
                   PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]))
        procs.append(subprocess.Popen([sys.executable, str(script)], env=env, text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    (_, err0), _ = [p.communicate(timeout=120) for p in procs]
    assert procs[1].returncode == -9
    assert procs[0].returncode == 2, err0
    assert "Traceback" not in err0
    assert err0.strip().splitlines()[-1] == (
        "error: rank 0: process rank 1 of this run died (torchrun's summary names its exit code); the last "
        "complete checkpoint epoch_1.pth is intact; rerun the same torchrun command with --resume")
