import importlib.util
import os
import shlex
import sys

import pytest
import torch
from torch import nn

os.environ.setdefault("MPLBACKEND", "Agg")
TOOLS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools")


class _Payload:
    """Unpickling this runs ``touch <marker>``: what a crafted checkpoint would do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {shlex.quote(str(self.marker))}",)


class EvilCheckpoint:
    """A checkpoint with model weights and, in its meta, a payload that creates ``marker`` if the
    file is ever unpickled unsafely."""

    def __init__(self, folder, legacy=False):
        import torch

        self.path, self.marker = str(folder / "evil.pth"), folder / "pwned"
        self.payload = _Payload(self.marker)  # also for other pickled formats (an .npz object array)
        torch.save({"state_dict": {"w": torch.zeros(1)}, "meta": self.payload}, self.path,
                   _use_new_zipfile_serialization=not legacy)  # legacy: torch < 1.6's format
        with open(self.path, "rb") as f:
            self.content = f.read()

    def assert_refused(self, message):
        """``message``: what a loader reported; the payload must not have run, the file must be
        untouched and the report must be one line naming the offending global."""
        assert not self.marker.exists(), "the checkpoint's payload ran"
        with open(self.path, "rb") as f:
            assert f.read() == self.content
        message = message.strip()
        assert "\n" not in message and "Traceback" not in message, message
        assert f"refusing to load {self.path}: it references posix.system" in message, message


@pytest.fixture(autouse=True)
def forget_mmengine_instances():
    """mmengine keeps every logger, visualizer and message hub by name, and a runner names them
    after the config and the second it started: two in-process runs of one config in the same
    second would share them (the second run's scalars.json lands in the first run's folder, its
    log in the first test's closed capture). Each test's instances are dropped after it; the
    registries' default scopes are kept (modules set them at import)."""
    yield
    if "mmengine.utils" not in sys.modules:
        return
    from mmengine.registry import DefaultScope
    from mmengine.utils import ManagerMixin

    def managed(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from managed(sub)

    for cls in set(managed(ManagerMixin)):
        if issubclass(cls, DefaultScope):
            continue
        while cls._instance_dict:
            for handler in getattr(cls._instance_dict.popitem()[1], "handlers", ()):
                handler.close()


@pytest.fixture
def one_thread():
    """Tiny models: a second intra-op thread only contends on a loaded 2-core machine (tens of
    times slower); torch's thread count is restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def evil_checkpoint(tmp_path, request):
    """An ``EvilCheckpoint`` in ``tmp_path``; parametrize indirectly with ``True`` for the legacy format."""
    return EvilCheckpoint(tmp_path, legacy=getattr(request, "param", False))


def _load_tool(tool):
    spec = importlib.util.spec_from_file_location(f"tool_{tool}", os.path.join(TOOLS, f"{tool}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def load_tool():
    """``load_tool(tool)``: the module of ``tools/<tool>.py``, freshly executed (its ``main`` runs the
    tool in this process). A fixture, not an import: a top-level ``tests`` package that some
    dependencies install (robustbench) shadows this folder for ``import tests.conftest``."""
    return _load_tool


@pytest.fixture
def tool_error(capsys):
    """``tool_error(tool, *argv)``: run ``tools/<tool>.py``'s main in this process, expect exit
    status 2 and return its stderr."""
    def run(tool, *argv):
        module = _load_tool(tool)
        capsys.readouterr()
        with pytest.raises(SystemExit) as exit_info:
            module.main([str(arg) for arg in argv])
        err = capsys.readouterr().err
        assert exit_info.value.code == 2, err[-3000:]
        return err
    return run


@pytest.fixture
def attack_spy(monkeypatch):
    """``attack_spy(module)``: wrap ``module.projected_gradient_ascent``; returns the list that gets,
    per call, ``((autocast enabled on CPU, its dtype), x, x_adv)``."""
    import torch

    def install(module):
        engine, calls = module.projected_gradient_ascent, []

        def spy(loss_fn, x, **kwargs):
            autocast = torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu")
            x_adv = engine(loss_fn, x, **kwargs)
            calls.append((autocast, x, x_adv))
            return x_adv

        monkeypatch.setattr(module, "projected_gradient_ascent", spy)
        return calls
    return install


@pytest.fixture(scope="session")
def torchrun():
    """``torchrun(tool, *argv)``: ``tools/<tool>.py`` in 2 CPU processes under torchrun (gloo,
    ``--launcher pytorch --device cpu --verbose`` added: mmengine's lines on the console too);
    asserts torchrun's exit status (``returncode``, 0 by default) and returns the combined output."""
    import subprocess

    def run(tool, *argv, returncode=0):
        env = dict(os.environ, CUDA_VISIBLE_DEVICES="", MPLBACKEND="Agg", OMP_NUM_THREADS="1")
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                   os.path.join(TOOLS, f"{tool}.py"), *map(str, argv), "--launcher", "pytorch", "--device", "cpu",
                   "--verbose"]
        proc = subprocess.run(command, cwd=os.path.dirname(TOOLS), env=env, capture_output=True, text=True,
                              timeout=600)
        assert proc.returncode == returncode, (proc.stdout + proc.stderr)[-4000:]
        return proc.stdout + proc.stderr
    return run


# ---- a toy classifier shared by tests/core and tests/cls ------------------------------------------
# A tiny classifier trained in about a second on a synthetic, separable image set.
#
# Each of the 4 classes is a fixed +-0.1 pattern around grey (1x8x8 pixels) plus a little noise, so a
# clean model is near 100% accurate and an Linf budget of 0.15 can reach another class' pattern: a
# working attack must bring accuracy down sharply, a broken one cannot.

NUM_CLASSES = 4
EPS = 0.15


def make_patterns(n, generator, templates):
    labels = torch.arange(n) % NUM_CLASSES
    noise = 0.03 * torch.randn(n, 1, 8, 8, generator=generator)
    return (0.5 + templates[labels] + noise).clamp(0, 1), labels


def make_mlp(num_classes=NUM_CLASSES):
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, num_classes))


@pytest.fixture(scope="session")
def mlp_factory():
    """Builds the toy architecture (1x8x8 inputs): ``mlp_factory(num_classes=4)``."""
    return make_mlp


@pytest.fixture(scope="session")
def random_mlp():
    """An untrained toy model with fixed weights, e.g. a (random-init) adversary."""
    torch.manual_seed(1)
    return make_mlp().eval()


@pytest.fixture(scope="session")
def toy_data():
    generator = torch.Generator().manual_seed(0)
    templates = 0.1 * torch.randint(0, 2, (NUM_CLASSES, 1, 8, 8), generator=generator).float().mul(2).sub(1)
    train = make_patterns(512, generator, templates)
    test = make_patterns(128, generator, templates)
    return train, test


@pytest.fixture(scope="session")
def toy_model(toy_data):
    (x, y), _ = toy_data
    torch.manual_seed(0)
    model = make_mlp()
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-2)
    for _ in range(100):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    model.eval().requires_grad_(True)
    for p in model.parameters():
        p.grad = None
    return model


@pytest.fixture(scope="session")
def test_batch(toy_data):
    return toy_data[1]


@pytest.fixture(scope="session")
def accuracy():
    def accuracy(model, x, y):
        with torch.no_grad():
            return (model(x).argmax(1) == y).float().mean().item()
    return accuracy
