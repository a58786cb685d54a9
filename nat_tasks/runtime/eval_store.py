"""The pieces of a long evaluation kept on disk as they are computed, so a killed or stopped run
resumes where it stopped and ends with the numbers of an uninterrupted one.

An ``EvalStore`` is a folder (e.g. ``<report>.state/``): ``settings.json`` says which evaluation
it holds (checkpoints and their SHA-256, data, attacks, seed...; ``file_sha256``) and whether it
finished; every piece (a tensor or a dict of tensors, ``cached(key, compute)``) is one file,
written atomically (``core.checkpoint.atomic_save``) as soon as it is computed. A piece must be
determined by the settings and its key alone (an attacked batch seeded by
``seeding.batch_seed(seed, batch)``, not by what ran before it), so a piece saved by an earlier
run is the piece this run would compute.

While the store is open (``with store:``), SIGTERM and SIGINT (``preemption.StopRequest``) let
the current piece finish; the next ``stop_point`` prints one line and exits with
``PREEMPTED_EXIT``: rerunning the command with --resume continues. ``EvalStore(None)`` keeps
nothing and never stops (library calls).
"""
import copy
import hashlib
import json
import os
import shutil

from nat_tasks.core.checkpoint import atomic_save, atomic_write_text, remove_temporaries, safe_load
from nat_tasks.core.errors import NatError

from .preemption import Preempted, StopRequest, announce_stop

FORMAT = 1
MANIFEST = "settings.json"


def file_sha256(path):
    """The SHA-256 of a file's bytes (a checkpoint replaced under the same name is another one)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):  # hashlib.file_digest needs Python 3.11
            digest.update(block)
    return digest.hexdigest()


class EvalStore:
    """Computed pieces of the evaluation ``settings`` in ``folder`` (``None``: in memory only)."""

    def __init__(self, folder=None, settings=None):
        self.folder, self.settings = folder, _plain(settings)
        self.prefix = ""
        self._stop = None

    def within(self, prefix):
        """The same store with keys under ``prefix`` (e.g. one model of several)."""
        scoped = copy.copy(self)
        scoped.prefix = f"{self.prefix}{prefix}."
        return scoped

    def cached(self, key, compute):
        """The piece ``key``: read back if an earlier run saved it, else ``compute()``, saved."""
        if self.folder is None:
            return compute()
        path = os.path.join(self.folder, f"{self.prefix}{key}.pt")
        if os.path.exists(path):
            return safe_load(path)
        value = compute()
        atomic_save(value, path)
        return value

    def stop_point(self, where):
        """After a piece: stop here if SIGTERM / SIGINT came, with one line saying ``where``."""
        if self._stop is not None and self._stop.signum is not None:
            announce_stop(self._stop.name, where, f"the evaluation state {self.folder}")
            raise Preempted()

    def finish(self):
        """Mark the evaluation complete: a later run without --resume starts afresh."""
        if self.folder is not None:
            _write_manifest(self.folder, self.settings, complete=True)

    def __enter__(self):
        if self.folder is not None:
            self._stop = StopRequest().__enter__()
        return self

    def __exit__(self, *exc):
        stop, self._stop = self._stop, None
        if stop is not None:
            stop.__exit__(*exc)


def open_store(folder, settings, *, resume, log=print):
    """The ``EvalStore`` of the evaluation ``settings`` (JSON-ready) in ``folder``.

    Without ``resume`` a run starts afresh (a finished evaluation's pieces are removed), unless
    ``folder`` holds an unfinished one (one line: add --resume, or delete it). With ``resume`` it
    continues the saved pieces, which must come from the same settings (one line naming the
    difference), or starts afresh when there are none. ``resume='auto'`` (the demos, which rerun
    by the same command) continues pieces of the same settings and starts afresh otherwise.
    """
    settings = _plain(settings)
    saved = _read_manifest(folder)
    if resume == "auto" and saved is not None and saved["settings"] != settings:
        log(f"{folder} holds another evaluation ({settings_difference(saved['settings'], settings)}): "
            "starting afresh")
        shutil.rmtree(folder)
        saved = None
    if saved is None:
        if resume is True:
            log(f"--resume: no evaluation state at {folder}, starting afresh")
    elif not resume:
        if not saved["complete"]:
            raise NatError(f"{folder} holds an unfinished evaluation: add --resume to continue it, "
                           "or delete it to start afresh")
        shutil.rmtree(folder)  # ours (its manifest says so) and finished: start afresh
    elif saved["settings"] != settings:
        raise NatError(f"--resume: {folder} was made with other settings "
                       f"({settings_difference(saved['settings'], settings)}); run with those, or "
                       "delete it to start afresh")
    else:
        pieces = sum(name.endswith(".pt") for name in os.listdir(folder))
        log(f"continuing the evaluation state {folder} ({pieces} pieces saved)")
    os.makedirs(folder, exist_ok=True)
    remove_temporaries(folder)  # writes a killed run left unfinished
    if saved is None or not resume:
        _write_manifest(folder, settings, complete=False)
    return EvalStore(folder, settings)


def settings_difference(saved, wanted, shown=3):
    """The first ``shown`` differences, each ``path: before -> now`` (``attacks[0].eps: ...``;
    a long value: ``path differs``)."""
    found = list(_differences(saved, wanted, ""))
    return "; ".join(found[:shown] + (["..."] if len(found) > shown else []))


def _differences(saved, wanted, path):
    if isinstance(saved, dict) and isinstance(wanted, dict):
        for key in sorted(set(saved) | set(wanted)):
            yield from _differences(saved.get(key), wanted.get(key), f"{path}.{key}".lstrip("."))
    elif isinstance(saved, list) and isinstance(wanted, list) and len(saved) == len(wanted):
        for i, (before, now) in enumerate(zip(saved, wanted)):
            yield from _differences(before, now, f"{path}[{i}]")
    elif saved != wanted:
        before, now = repr(saved), repr(wanted)
        yield f"{path}: {before} -> {now}" if len(before) + len(now) <= 80 else f"{path} differs"


def _write_manifest(folder, settings, complete):
    atomic_write_text(json.dumps(dict(format=FORMAT, settings=settings, complete=complete)) + "\n",
                      os.path.join(folder, MANIFEST))


def _read_manifest(folder):
    """The saved manifest, or ``None`` where ``folder`` holds no evaluation state."""
    path = os.path.join(folder, MANIFEST)
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            saved = json.load(f)
        if saved.get("format") != FORMAT:
            raise ValueError(f"format {saved.get('format')!r}, expected {FORMAT}")
        return {"settings": saved["settings"], "complete": bool(saved["complete"])}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise NatError(f"cannot read the evaluation state {path} ({type(err).__name__}: {err}): "
                       "delete its folder to start afresh") from None


def _plain(value):
    """``value`` as JSON gives it back (tuples become lists), so saved and new settings compare."""
    return json.loads(json.dumps(value))
