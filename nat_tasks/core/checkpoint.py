"""Checkpoint I/O shared by all tasks: atomic writes and safe, tolerant state-dict loading.

Loading never runs code from the file: ``safe_load`` unpickles with ``weights_only=True``, which
admits tensors, plain containers and the globals allow-listed with torch's
``add_safe_globals`` (``nat_tasks.runtime.checkpoints`` adds the few that mmengine's, torchreid's
and our own checkpoints need), and refuses anything else with one line naming it.
"""
import os
import re
import tempfile

import torch

from .errors import NatError


TMP_PREFIX = ".tmp_"  # a write in progress; one left by a killed process is removed on the next start


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _atomic_write(path, mode, write):
    """Write through ``write(file)`` into a temporary file in the same folder, fsync, then rename
    over ``path``: readers see the old file or the new one, never a torn one."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=TMP_PREFIX, suffix=os.path.basename(path))
    try:
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the usual mode
        os.replace(tmp, path)
        _fsync_folder(folder)  # the rename itself survives a power cut
    except BaseException as err:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(err, OSError) and err.filename is None:  # a failed write names no file: say which
            err.filename = path
        raise


def _fsync_folder(folder):
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_temporaries(folder):
    """Remove the temporary files of writes that a killed process left in ``folder``; returns their
    names. Call it where no other process writes into ``folder``."""
    names = sorted(n for n in os.listdir(folder) if n.startswith(TMP_PREFIX)) if os.path.isdir(folder) else []
    for name in names:
        os.unlink(os.path.join(folder, name))
    return names


def atomic_save(obj, path):
    """``torch.save`` atomically (see ``_atomic_write``)."""
    _atomic_write(path, "wb", lambda f: torch.save(obj, f))


def atomic_write_bytes(data, path):
    """Write bytes atomically."""
    _atomic_write(path, "wb", lambda f: f.write(data))


def atomic_write_text(text, path):
    """Write a text file (JSON, Markdown) atomically."""
    _atomic_write(path, "w", lambda f: f.write(text))


# torch's weights-only errors wrap the actual reason in these generic lines.
_TORCH_LOAD_BOILERPLATE = ("Weights only load failed", "Please file an issue", "Check the documentation")


def safe_load(path, map_location="cpu"):
    """``torch.load(path, weights_only=True)``; a file that needs a global outside the allow-list
    is refused with one ``NatError`` line naming it, before anything from it runs."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise NatError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # refused, corrupt or not a torch file
        refused = _refused_global(path, err)
        if refused:
            raise NatError(f"refusing to load {path}: it references {refused}, which a checkpoint "
                           "never needs (unpickling it could run code; see the README's Security "
                           "section)") from None
        reason = next((line for line in str(err).splitlines()
                       if line.strip() and not line.startswith(_TORCH_LOAD_BOILERPLATE)), "")
        raise NatError(f"cannot read checkpoint {path}: {type(err).__name__}: {reason}") from None


def _refused_global(path, err):
    """What the weights-only unpickler refused: every global outside the allow-list (torch's static
    scan of a zip checkpoint), else the one its message names (a legacy file, or an instance of a
    class it may not rebuild). ``None`` when ``err`` was no refusal."""
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception:  # not a zip checkpoint: legacy format or garbage
        names = []
    if names:
        return ", ".join(sorted(names))
    match = re.search(r"GLOBAL ([\w.]+)|got <class '([\w.]+)'>", str(err))
    return (match.group(1) or match.group(2)) if match else None


def load_state_dict(path, prefix=None):
    """Read model weights from our checkpoints, mmengine/torchreid ones, or a plain state_dict.

    Accepts a dict with ``state_dict`` (mmengine, torchreid, ours) or a bare state_dict; strips
    DDP's ``module.`` prefix; with ``prefix`` keeps only keys under it (``prefix`` removed).
    """
    path = os.fspath(path)
    return state_dict_of(safe_load(path), path, prefix)


def state_dict_of(obj, path, prefix=None):
    """The model weights inside an already loaded checkpoint ``obj`` (see ``load_state_dict``)."""
    state = obj.get("state_dict", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise NatError(f"{path} holds no model state_dict")
    state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}
    if prefix:
        state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        if not state:
            raise NatError(f"{path} has no weights under '{prefix}'")
    return state


def load_weights(model, path, prefix=None, what="checkpoint"):
    """Load weights strictly; a missing key or a shape mismatch is one clear ``NatError`` line."""
    state = load_state_dict(path, prefix=prefix)
    own = model.state_dict()
    mismatched = [f"{k} {tuple(v.shape)} vs {tuple(own[k].shape)}"
                  for k, v in state.items() if k in own and v.shape != own[k].shape]
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if mismatched or missing or unexpected:
        details = []
        if mismatched:
            details.append(f"shape mismatch ({len(mismatched)}), e.g. {mismatched[0]}")
        if missing:
            details.append(f"{len(missing)} missing keys, e.g. {missing[0]}")
        if unexpected:
            details.append(f"{len(unexpected)} unexpected keys, e.g. {unexpected[0]}")
        raise NatError(f"{what} {path} does not fit the model: " + "; ".join(details))
    model.load_state_dict(state)
    return model
