"""Fuzzing the tools' options and --cfg-options of the main config keys (hypothesis): whatever the
values, a mistake is one ``error:`` line and exit status 2, never a traceback, and nothing is
half-written. Every run points at a data root that does not exist, so a valid combination also
stops (with its own line) before any training; the tools' main runs in this process, train_cls's
with its config checks standing in for the runner (``validate_only``)."""
import contextlib
import glob
import importlib.util
import io
import os

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CIFAR_CONFIG = os.path.join(REPO, "configs", "cls", "cifar10_preact18_nat.py")
FUZZ = settings(max_examples=20, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# The keys a user overrides most; values of every kind, well-formed or not.
CLS_KEYS = ["model.nasty.weight", "model.nasty.tau", "model.nasty.adversary.checkpoint", "model.method.type",
            "model.method.eps", "model.method.alpha", "model.method.steps", "model.arch", "model.num_classes",
            "model.val_attack.n_examples", "optim_wrapper.optimizer.lr", "train_cfg.max_epochs",
            "train_dataloader.batch_size", "train_dataloader.dataset.val_size", "randomness.seed",
            "default_hooks.checkpoint.interval"]
VALUES = st.one_of(
    st.integers(-10 ** 5, 10 ** 5).map(str),  # larger class counts would only measure the RAM
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["", "None", "True", "[1,2]", "(1,", "[[8],[9]]", "'x'", "{}", "a=b", "1e400", ",", "pgd_at",
                     "nat", "small_cnn", "-0", "0x10"]),
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=8),
)
CFG_OPTIONS = st.lists(st.tuples(st.sampled_from(CLS_KEYS), VALUES).map("=".join), min_size=1, max_size=3)


def load_tool(tool):
    """A fresh copy of ``tools/<tool>.py`` as a module."""
    spec = importlib.util.spec_from_file_location(f"fuzz_{tool}", os.path.join(REPO, "tools", f"{tool}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def one_line_exit(main, argv, work_dir):
    """Run ``main(argv)``; it must exit 2 with one ``error:`` line and leave no checkpoint or
    temporary file in ``work_dir``."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        with pytest.raises(SystemExit) as exit_info:
            main([str(a) for a in argv])
    lines = [line for line in err.getvalue().splitlines() if line.strip()]
    assert exit_info.value.code == 2, (argv, err.getvalue()[-3000:])
    assert "Traceback" not in err.getvalue(), (argv, err.getvalue()[-3000:])
    assert [line for line in lines if line.startswith("error: ")] == lines[-1:], (argv, lines[-5:])
    written = glob.glob(os.path.join(work_dir, "**", "*.pth"), recursive=True)
    assert not written + glob.glob(os.path.join(work_dir, "**", ".tmp_*"), recursive=True), (argv, written)
    return lines[-1]


def validate_only(cfg):
    """Stands in for the trainer: the checks a run makes of its config before the first
    iteration (the model: method, budgets, nasty settings, architecture; the training data),
    without building a runner, which would make each example cost seconds."""
    from mmengine.registry import DATASETS, MODELS

    from nat_tasks.cls.training.train import _registry_errors

    with _registry_errors():
        MODELS.build(cfg.model)
        DATASETS.build(cfg.train_dataloader.dataset)


@pytest.fixture(scope="module")
def train_cls():
    module = load_tool("train_cls")
    module.train = validate_only  # this module's own copy: nothing else sees the stand-in
    return module.main


@pytest.fixture(scope="module")
def nat_options(tmp_path_factory):
    """A NAT run of a small CNN against a real (random) adversary checkpoint: the fuzzed keys reach
    the nasty term's checks instead of stopping at a missing adversary."""
    import torch

    from nat_tasks.cls.models.architectures import build_classifier

    path = tmp_path_factory.mktemp("fuzz") / "adversary.pth"
    torch.save(build_classifier("small_cnn", 10).state_dict(), path)
    return ["model.arch=small_cnn", "model.nasty.adversary.arch=small_cnn", f"model.nasty.adversary.checkpoint={path}"]


@pytest.fixture(scope="module")
def eval_cls():
    return load_tool("eval_cls").main


@FUZZ
@given(options=CFG_OPTIONS, extra=st.lists(st.sampled_from(
    [["--amp"], ["--amp-dtype", "float8"], ["--device", "tpu"], ["--launcher", "mpi"], ["--resume"], ["--bogus"],
     ["--cfg-options"], ["--device", "cuda:99"], ["--work-dir"]]), max_size=2))
def test_train_cls_options(train_cls, nat_options, tmp_path, options, extra):
    work_dir = tmp_path / "w"
    argv = [CIFAR_CONFIG, "--work-dir", work_dir, "--data-root", tmp_path / "nowhere", "--cfg-options",
            *nat_options, *options]
    one_line_exit(train_cls, argv + [a for flags in extra for a in flags], str(work_dir))


@FUZZ
@given(options=CFG_OPTIONS, flags=st.lists(st.sampled_from(
    [["--attacks", "pgd20,nope"], ["--attacks", ","], ["--eps", "-1"], ["--eps", "nan"], ["--n-examples", "0"],
     ["--threat", "l2"], ["--threat", "l0"], ["--k", "-3"], ["--batch-size", "x"], ["--launcher", "slurm"],
     ["--surrogate", "a"], ["--transfer-from", "x:y"], ["--checklist", "--resume"]]), max_size=2))
def test_eval_cls_options(eval_cls, nat_options, tmp_path, options, flags):
    argv = [CIFAR_CONFIG, tmp_path / "missing.pth", "--out", tmp_path, "--data-root", tmp_path / "nowhere",
            "--cfg-options", *nat_options, *options] + [a for pair in flags for a in pair]
    one_line_exit(eval_cls, argv, str(tmp_path))
    assert not glob.glob(str(tmp_path / "eval_*"))  # no report, no state file
