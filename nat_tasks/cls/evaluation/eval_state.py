"""The per-example state of a robustness evaluation, on disk, so a killed run resumes where it stopped.

One JSON file per evaluation (``tools/eval_cls.py``: ``<out>/eval_<checkpoint>.state.json``),
rewritten atomically after every batch by one process (rank 0 under torchrun). It holds the run's
settings (checkpoint path and SHA-256, the examples' SHA-256, each attack with its settings, the
threat model, seed, batch size) and, per example, whether it is classified correctly clean and,
per attack, whether it is robust (``null``: its batch was not attacked yet), plus ``robust_all``:
robust under every attack (``null`` until every attack has seen it). The examples are cut into
fixed batches (batch ``b`` = examples ``b*batch_size ...``): a batch is the unit of work, of
resumption and of sharding, and its random draws depend on the run's seed and ``b`` only
(``nat_tasks.runtime.seeding.batch_seed``), so the numbers do not depend on what ran before it, in which process.

A state continues only with the settings it was made with: anything else would mix two runs.
"""
import hashlib
import json
import os

from mmengine.dist import broadcast_object_list, is_main_process

from nat_tasks.core.checkpoint import atomic_write_text
from nat_tasks.core.errors import NatError
from nat_tasks.runtime.eval_store import settings_difference

FORMAT = 1


def examples_sha256(x, y):
    """A fingerprint of the evaluated examples (images and labels): another subset, data set or
    preprocessing gives another one."""
    digest = hashlib.sha256(x.detach().cpu().contiguous().numpy().tobytes())
    digest.update(y.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


class EvalState:
    """Per-example results of ``n`` examples under the attacks named in ``settings['attacks']``
    (a dict name -> settings text). ``path``: where ``save`` writes (``None``: memory only, e.g.
    the processes other than rank 0, which keep the same state but never write it)."""

    def __init__(self, settings, path=None):
        self.settings = _plain(settings)
        self.path = path
        n = self.settings["n_examples"]
        self.clean = [None] * n
        self.flags = {name: [None] * n for name in self.settings["attacks"]}
        self.seconds = dict.fromkeys(self.settings["attacks"], 0.0)

    @property
    def batch_size(self):
        return self.settings["batch_size"]

    def batches(self):
        """``(b, start, stop)`` of every batch."""
        n, size = self.settings["n_examples"], self.batch_size
        return [(b, start, min(start + size, n)) for b, start in enumerate(range(0, n, size))]

    def todo(self, attack):
        """The batches ``attack`` has not run on yet, in order."""
        return [(b, start, stop) for b, start, stop in self.batches() if self.flags[attack][start] is None]

    def record(self, attack, batch, clean, robust, seconds):
        """Batch ``batch``'s clean correctness and robustness flags under ``attack``."""
        start = batch * self.batch_size
        self.clean[start:start + len(clean)] = [bool(c) for c in clean]
        self.flags[attack][start:start + len(robust)] = [bool(r) for r in robust]
        self.seconds[attack] += float(seconds)

    def complete(self):
        return all(None not in flags for flags in self.flags.values())

    def robust_all(self):
        """Per example: robust under every attack (``None`` while an attack has not seen it)."""
        columns = list(self.flags.values())
        return [None if not column or None in column else all(column) for column in zip(*columns)]

    def as_dict(self):
        return dict(format=FORMAT, settings=self.settings, clean=self.clean, flags=self.flags,
                    seconds=self.seconds, robust_all=self.robust_all())

    def save(self):
        if self.path is not None:
            atomic_write_text(json.dumps(self.as_dict()) + "\n", self.path)

    @classmethod
    def from_dict(cls, saved, path=None):
        state = cls(saved["settings"], path)
        state.clean, state.flags, state.seconds = saved["clean"], saved["flags"], saved["seconds"]
        return state


def open_state(path, settings, *, resume, writer=True, log=print):
    """The state of the evaluation ``settings`` describes, at ``path``.

    Without ``resume`` a run starts afresh, unless ``path`` holds an unfinished evaluation (one line:
    add --resume, or delete it). With ``resume`` it continues the saved state, which must have
    been made with the same settings (one line naming the difference), or starts afresh when
    there is none. Under torchrun rank 0 reads the file and every process gets the same state;
    only the ``writer`` (rank 0) will write it. ``log`` gets the notes on what is continued.
    """
    saved = _from_rank0(lambda: _read(path, _plain(settings), resume, log))
    if isinstance(saved, NatError):
        raise saved
    target = path if writer else None
    return EvalState(settings, target) if saved is None else EvalState.from_dict(saved, target)


def _read(path, settings, resume, log):
    if not os.path.exists(path):
        if resume:
            log(f"--resume: no evaluation state at {path}, starting afresh")
        return None
    try:
        with open(path) as f:
            saved = json.load(f)
        saved_settings = saved["settings"]
        complete = all(None not in flags for flags in saved["flags"].values())
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        return NatError(f"cannot read the evaluation state {path} ({type(err).__name__}: {err}): delete it")
    if not resume:
        if complete:
            return None
        return NatError(f"{path} holds an unfinished evaluation: add --resume to continue it, or delete it "
                        "to start afresh")
    if saved.get("format") != FORMAT or saved_settings != settings:
        return NatError(f"--resume: {path} was made with other settings ({settings_difference(saved_settings, settings)}); "
                        "run with those, or delete it to start afresh")
    done = sum(flags.count(None) == 0 for flags in saved["flags"].values())
    log(f"--resume: continuing {path} ({done} of {len(saved['flags'])} attacks complete)")
    return saved


def _plain(value):
    """``value`` as JSON gives it back (tuples become lists), so saved and new settings compare."""
    return json.loads(json.dumps(value))


def _from_rank0(read):
    """``read()`` on rank 0 (the one that writes the file), its result shared with every process."""
    box = [read() if is_main_process() else None]
    broadcast_object_list(box, src=0)  # one process: nothing to do
    return box[0]
