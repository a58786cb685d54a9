"""scripts/bootstrap.sh's stages, run against a stand-in virtualenv whose python records its calls
(nothing is installed): which steps each stage takes, its one line per step, its stamps, the CPU/CUDA
choice for mmcv's ops; and that classification (scripts/demo.sh's stage) imports no detection or
re-ID package."""
import ast
import hashlib
import os
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAKE_PYTHON = """#!/bin/sh
echo "$*" >> "$(dirname "$0")/../calls.txt"
case "$*" in
  *"import mmcv, mmcv.ops"*) exit "${FAKE_MMCV_RC:-0}" ;;
  *"torch.cuda.is_available"*) exit 1 ;;  # no GPU
esac
exit 0
"""


def stamp(stage):
    """The hash a finished stage leaves: this script, setup.py and its requirement file."""
    paths = ["scripts/bootstrap.sh", "setup.py", f"requirements-{stage}.txt"]
    return hashlib.sha256(b"".join(open(os.path.join(REPO, p), "rb").read() for p in paths)).hexdigest()


@pytest.fixture
def venv(tmp_path):
    """A stand-in virtualenv with the cls stage done."""
    os.makedirs(tmp_path / "venv" / "bin")
    python = tmp_path / "venv" / "bin" / "python"
    python.write_text(FAKE_PYTHON)
    python.chmod(0o755)
    (tmp_path / "venv" / ".nat_stamp.cls").write_text(stamp("cls") + "\n")
    return tmp_path / "venv"


def bootstrap(venv, *stages, path=None, **env):
    """Run the script; returns (its stderr lines, the stand-in python's calls)."""
    env = dict(os.environ, NAT_VENV=str(venv), NAT_CACHE=str(venv.parent / "cache"), **env)
    if path is not None:
        env["PATH"] = path
    env.pop("CUDA_HOME", None)
    proc = subprocess.run(["bash", os.path.join(REPO, "scripts", "bootstrap.sh"), *stages], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    calls = venv / "calls.txt"
    lines = calls.read_text().splitlines() if calls.exists() else []
    calls.unlink(missing_ok=True)
    return proc.stderr.splitlines(), lines


def test_a_stage_runs_once_after_the_stages_it_builds_on(venv):
    err, calls = bootstrap(venv, "det")
    assert err == ["[bootstrap det] installing requirements-det.txt", "[bootstrap det] ready"]
    assert calls[0].endswith("import mmcv, mmcv.ops") and calls[1].endswith(
        f"install -r {REPO}/requirements-det.txt")
    assert (venv / ".nat_stamp.det").read_text().strip() == stamp("det")
    assert bootstrap(venv, "det") == ([], [])  # done: silent, nothing run
    assert bootstrap(venv, "cls") == ([], [])


def test_mmcv_ops_are_built_for_cuda_only_with_a_toolkit_and_a_gpu(venv, tmp_path):
    wheel = tmp_path / "cache" / "wheels" / "mmcv-2.1.0-cp311-cp311-linux_x86_64.whl"  # a cached CPU build
    os.makedirs(wheel.parent)
    wheel.write_text("")
    toolkit = tmp_path / "cuda" / "bin"
    os.makedirs(toolkit)
    (toolkit / "nvcc").write_text("#!/bin/sh\necho 'Cuda compilation tools, release 13.0, V13.0.88'\n")
    (toolkit / "nvcc").chmod(0o755)
    system = "/usr/bin:/bin"
    err, calls = bootstrap(venv, "det", path=system, FAKE_MMCV_RC="1")
    assert "[bootstrap det] no CUDA toolkit (no nvcc on PATH or in $CUDA_HOME/bin): mmcv's ops are built for the CPU" \
        in err and f"[bootstrap det] installing {wheel}" in err
    assert any(call.endswith(f"install --no-deps {wheel}") for call in calls)

    (venv / ".nat_stamp.det").unlink()
    err, _ = bootstrap(venv, "det", path=f"{toolkit}:{system}", FAKE_MMCV_RC="1")
    assert f"[bootstrap det] CUDA toolkit {toolkit}/nvcc but no GPU visible: mmcv's ops are built for the CPU " \
        "(FORCE_CUDA=1: for CUDA)" in err and f"[bootstrap det] installing {wheel}" in err


def test_scripts_ask_for_their_stages():
    def bootstrap_line(script):
        with open(os.path.join(REPO, "scripts", script)) as f:
            return next(line.split() for line in f if "bootstrap.sh" in line and not line.startswith("#"))

    assert bootstrap_line("demo.sh")[-1] == "cls"  # the demo never waits for mmcv's build
    assert bootstrap_line("test.sh")[-1] == "all"
    proc = subprocess.run(["bash", os.path.join(REPO, "scripts", "bootstrap.sh"), "mmcv"], capture_output=True,
                          text=True)
    assert proc.returncode == 2 and "stages: cls det reid test docs, all" in proc.stderr


def module_imports(path, module):
    """The modules a file imports when it is imported (module level, ``if``/``try`` blocks
    included; imports inside functions run later, if ever)."""
    package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
    found, todo = [], list(ast.parse(open(path).read()).body)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            base = ".".join(p for p in (base, node.module) if p)
            found += [base] + [f"{base}.{alias.name}" for alias in node.names]  # a name may be a submodule
        elif isinstance(node, (ast.If, ast.Try)):
            todo += node.body + node.orelse + getattr(node, "finalbody", []) + \
                [n for h in getattr(node, "handlers", []) for n in h.body]
    return found


def source_of(module):
    """The file of one of our modules, or None (a third-party module or a name that is no module)."""
    path = os.path.join(REPO, *module.split("."))
    for candidate in (path + ".py", os.path.join(path, "__init__.py")):
        if os.path.isfile(candidate):
            return candidate
    return None


def test_classification_imports_no_detection_or_reid_package():
    """Everything tools/train_cls.py (the demo) imports, followed through our modules: no mmcv,
    mmdet or torchreid (the cls stage does not install them), no nat_tasks.det or .reid."""
    seen, third_party, todo = set(), set(), [("tools.train_cls", os.path.join(REPO, "tools", "train_cls.py"))]
    while todo:
        module, path = todo.pop()
        for name in module_imports(path, module):
            parts = name.split(".")
            for depth in range(1, len(parts) + 1):  # importing a.b.c imports a and a.b first
                prefix = ".".join(parts[:depth])
                if prefix in seen:
                    continue
                seen.add(prefix)
                source = source_of(prefix) if parts[0] == "nat_tasks" else None
                if source:
                    todo.append((prefix, source))
                elif parts[0] != "nat_tasks":
                    third_party.add(parts[0])
    assert {"torch", "mmengine", "nat_tasks.cls.demos.demo"} <= third_party | seen  # the walk saw the demo
    assert not third_party & {"mmcv", "mmdet", "torchreid"}
    assert not [m for m in seen if m.startswith(("nat_tasks.det", "nat_tasks.reid"))]


def test_a_detection_tool_without_mmcv_names_the_set_up_command(monkeypatch, capsys):
    import importlib.util

    from nat_tasks.runtime.tool import require_stage

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mmcv" else find_spec(name, *a))
    with pytest.raises(SystemExit) as exit_info:
        require_stage("det")
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == ("error: mmcv not installed; install the det stage with: "
                                       "bash scripts/bootstrap.sh det\n")
