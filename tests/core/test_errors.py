"""User errors are one line and exit status 2; diverged losses and bad budgets are caught."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import nat_tasks
from nat_tasks.core.errors import NatError, check_eps, check_finite, cli_entry


def test_check_finite_passes_finite_losses_through():
    loss = torch.tensor(1.5)
    assert check_finite(loss) is loss


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_check_finite_raises_on_divergence(value):
    with pytest.raises(NatError, match="diverged"):
        check_finite(torch.tensor(value), what="nasty loss")


def test_check_finite_reports_the_offending_value():
    with pytest.raises(NatError, match="became nan"):
        check_finite(torch.tensor([1.0, float("nan")]))


def test_check_eps_accepts_pixel_budgets_and_rejects_others():
    assert check_eps(8 / 255) == pytest.approx(8 / 255)
    assert check_eps(8, upper=255) == 8.0
    for bad in (-0.1, 8.0, float("nan")):
        with pytest.raises(NatError, match="pixel units"):
            check_eps(bad)


def test_cli_entry_prints_one_line_and_exits_2(capsys):
    @cli_entry
    def main(path):
        raise NatError(f"data root {path} does not exist")

    with pytest.raises(SystemExit) as exit_info:
        main("/nowhere")
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == "error: data root /nowhere does not exist\n"


def test_cli_entry_returns_normally():
    assert cli_entry(lambda: 7)() == 7


def test_cli_entry_in_a_real_process_has_no_traceback(tmp_path):
    script = tmp_path / "tool.py"
    script.write_text(textwrap.dedent("""
        from nat_tasks.core.errors import NatError, cli_entry

        @cli_entry
        def main():
            raise NatError("checkpoint x.pth not found")

        main()
    """))
    root = str(Path(nat_tasks.__file__).parents[1])
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])), timeout=60)
    assert done.returncode == 2
    assert done.stderr == "error: checkpoint x.pth not found\n"
