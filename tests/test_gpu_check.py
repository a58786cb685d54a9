"""benchmarks/gpu_check.py without a GPU: one line and exit 0; its report, exit status and the
PGD flag comparison on the CPU (the full ``--device cpu --dry-run`` runs tools for minutes: the
GPU-check docs page gives its command and what it printed)."""
import importlib.util
import os
import sys

import pytest
import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCHMARKS = os.path.join(REPO, "benchmarks")


@pytest.fixture
def gpu_check(monkeypatch):
    monkeypatch.syspath_prepend(BENCHMARKS)  # its own imports: bench_common, bench_amp
    spec = importlib.util.spec_from_file_location("gpu_check", os.path.join(BENCHMARKS, "gpu_check.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("bench_common", None)


def test_without_a_gpu_it_says_so_in_one_line_and_exits_0(gpu_check, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu_check.main([]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and out.startswith("gpu_check: no CUDA GPU on this machine")
    with pytest.raises(SystemExit) as exit_info:  # the CPU runs the paths, never the figures
        gpu_check.main(["--device", "cpu"])
    assert exit_info.value.code == 2


def test_a_failing_check_is_reported_and_sets_the_exit_status(gpu_check, monkeypatch, capsys, tmp_path):
    failing = {"torchrun": dict(ok=False, detail="exit 1")}
    monkeypatch.setattr(gpu_check, "check_nccl", lambda tmp, device, dry_run: failing)
    assert gpu_check.main(["--device", "cpu", "--dry-run", "--checks", "nccl", "--out", str(tmp_path / "r")]) == 1
    assert "| torchrun | FAIL | exit 1 |" in capsys.readouterr().out
    assert "| torchrun | FAIL | exit 1 |" in (tmp_path / "r.md").read_text()
    monkeypatch.setattr(gpu_check, "check_nccl", lambda tmp, device, dry_run: {"torchrun": dict(ok=True, detail="ok")})
    assert gpu_check.main(["--device", "cpu", "--dry-run", "--checks", "nccl"]) == 0


def test_pgd_flags_from_the_same_starts_agree_and_differ_from_other_starts(gpu_check, tmp_path):
    from nat_tasks.cls.models.architectures import build_classifier

    torch.manual_seed(0)
    net = build_classifier("small_cnn", 10, in_channels=1, image_size=28)
    torch.save(net.state_dict(), tmp_path / "w.pth")
    x = torch.rand(8, 1, 28, 28)
    y = net(x).argmax(1)  # every image correct clean: the flags are the attack's
    result, = gpu_check.check_pgd(str(tmp_path / "w.pth"), "cpu", x, y).values()
    assert result["ok"] and "0 flags differ" in result["detail"]
    flags, margins = gpu_check.pgd_flags(net.eval(), x, y, torch.zeros_like(x))
    assert flags.tolist() == (margins > 0).tolist() and not flags.all()
