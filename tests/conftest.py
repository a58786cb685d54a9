import importlib.util
import os
import shlex

import pytest

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
        torch.save({"state_dict": {"w": torch.zeros(1)}, "meta": _Payload(self.marker)}, self.path,
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


@pytest.fixture
def evil_checkpoint(tmp_path, request):
    """An ``EvilCheckpoint`` in ``tmp_path``; parametrize indirectly with ``True`` for the legacy format."""
    return EvilCheckpoint(tmp_path, legacy=getattr(request, "param", False))


@pytest.fixture
def tool_error(capsys):
    """``tool_error(tool, *argv)``: run ``tools/<tool>.py``'s main in this process, expect exit
    status 2 and return its stderr."""
    def run(tool, *argv):
        spec = importlib.util.spec_from_file_location(f"tool_{tool}", os.path.join(TOOLS, f"{tool}.py"))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        capsys.readouterr()
        with pytest.raises(SystemExit) as exit_info:
            module.main([str(arg) for arg in argv])
        err = capsys.readouterr().err
        assert exit_info.value.code == 2, err[-3000:]
        return err
    return run
