"""What a fault leaves intact, for the one line ``cli_entry`` prints (``core.errors.on_fault``).

A trainer's run folder says it itself: mmengine's ``last_checkpoint`` marker (classification,
detection) or torchreid's ``latest.pth`` (re-ID) names the newest complete checkpoint, which a
full disk or a dead peer cannot tear (checkpoints are written to a temporary file and renamed).
"""
import os

from nat_tasks.core.errors import on_fault


def rerun(resume=True):
    """How to continue: the same command (torchrun's, under it), with ``--resume`` when there is a
    checkpoint to continue from."""
    command = "the same torchrun command" if int(os.environ.get("WORLD_SIZE", "1")) > 1 else "the same command"
    return f"rerun {command}" + (" with --resume" if resume else "")


def newest_checkpoint(work_dir):
    """The newest complete checkpoint of a run folder, or None."""
    marker = os.path.join(work_dir, "last_checkpoint")
    if os.path.isfile(marker):
        with open(marker) as f:
            path = f.read().strip()
        if path and os.path.isfile(path):
            return path
    latest = os.path.join(work_dir, "latest.pth")
    return latest if os.path.isfile(latest) else None


def checkpoint_intact(work_dir):
    """(what is intact, how to continue) of a training run in ``work_dir``."""
    checkpoint = newest_checkpoint(work_dir)
    if checkpoint is None:
        return f"no checkpoint was complete yet in {work_dir}", rerun(resume=False)
    return f"the last complete checkpoint {checkpoint} is intact", rerun()


def training_faults(work_dir):
    """``on_fault`` for a training run writing into ``work_dir``."""
    return on_fault(work_dir, lambda: checkpoint_intact(work_dir))
