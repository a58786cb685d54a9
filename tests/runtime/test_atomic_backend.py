"""The 'atomic_local' mmengine file backend: a checkpoint write is whole or absent."""
import pytest

import nat_tasks.runtime  # noqa: F401  (registers the backend)


def test_atomic_checkpoint_backend_never_leaves_a_torn_file(tmp_path):
    from mmengine.fileio import get_file_backend

    backend = get_file_backend(str(tmp_path), backend_args=dict(backend="atomic_local"))
    target = tmp_path / "epoch_1.pth"
    backend.put(b"complete checkpoint", str(target))
    assert target.read_bytes() == b"complete checkpoint"
    with pytest.raises(TypeError):
        backend.put("not bytes: the write fails midway", str(target))
    assert target.read_bytes() == b"complete checkpoint"
    backend.put_text("epoch_1.pth", str(tmp_path / "last"))
    assert (tmp_path / "last").read_text() == "epoch_1.pth"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch_1.pth", "last"]
