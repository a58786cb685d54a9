"""An mmengine file backend whose writes are atomic: checkpoints are never left half-written.

mmengine's ``LocalBackend.put`` opens the final path and writes into it, so a crash (or a full
disk) mid-write leaves a torn ``epoch_N.pth`` that ``--resume`` would then pick. Registered as
``'atomic_local'``; select it with ``backend_args=dict(backend='atomic_local')`` on
``CheckpointHook`` (every checkpoint, best or last, goes through ``put``).
"""
from mmengine.fileio import LocalBackend, register_backend

from nat_tasks.core.checkpoint import atomic_write_bytes


@register_backend("atomic_local", force=True)
class AtomicLocalBackend(LocalBackend):
    """``LocalBackend`` with atomic ``put``/``put_text`` (temporary file + rename)."""

    def put(self, obj, filepath):
        atomic_write_bytes(obj, filepath)

    def put_text(self, obj, filepath, encoding="utf-8"):
        atomic_write_bytes(obj.encode(encoding), filepath)
