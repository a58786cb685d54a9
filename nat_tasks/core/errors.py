"""User-facing errors: one clear line on stderr and a non-zero exit, never a deep traceback.

``cli_entry`` prints one line and exits with status 2 for
- a ``NatError`` (a problem the user can fix), also when a data-loader worker raised it;
- a full disk, a full quota or a read-only file system while writing (``DISK_ERRORS``):
  "no space left on <path>; <what is intact>; free space and <how to continue>";
- a lost peer of a multi-process run (a killed or crashed torchrun process breaks the others'
  collectives): "rank 1 died ...; <what is intact>; <how to continue>".
What is intact and how to continue depend on what the command was doing: a block run under
``on_fault`` says it (e.g. the trainer: "the last complete checkpoint ... is intact", "rerun with
--resume"); outside any, the line says files written before the fault are intact.
"""
import contextlib
import errno
import functools
import math
import numbers
import os
import sys


class NatError(Exception):
    """A problem the user can fix (bad path, bad option, incompatible checkpoint, diverged loss)."""


DISK_ERRORS = {errno.ENOSPC: "no space left on", errno.EDQUOT: "disk quota exceeded on",
               errno.EROFS: "read-only file system at"}
# What gloo / NCCL / the c10d store raise in the surviving processes when a peer process is gone.
PEER_LOST = ("Connection closed by peer", "Connection reset by peer", "Broken pipe", "NCCL communicator was aborted",
             "failed to recv, got 0 bytes", "Connection refused")
DEFAULT_INTACT = ("the files written before this are intact", "rerun the same command")


@contextlib.contextmanager
def on_fault(folder, describe):
    """Within the block, a full disk or a lost peer is reported with ``describe()``: a pair
    (what is intact, how to continue), evaluated when the fault happens. ``folder`` stands in for
    the path of a failed write that does not name its file (e.g. ``write`` on an open file)."""
    try:
        yield
    except (OSError, RuntimeError) as err:
        if not hasattr(err, "nat_intact") and (_is_disk_error(err) or _is_peer_lost(err)):
            err.nat_intact = describe()
            if _is_disk_error(err) and err.filename is None:
                err.filename = folder
        raise


def cli_entry(main):
    """Wrap a command-line ``main`` so a ``NatError``, a full disk or a lost peer prints one line
    and exits with status 2."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except NatError as err:
            _exit_with(one_line(str(err)))
        except OSError as err:
            if not _is_disk_error(err):
                raise
            _exit_with(disk_full_line(err))
        except RuntimeError as err:
            if not _is_peer_lost(err):
                raise
            _exit_with(peer_lost_line(err))
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            sys.exit(130)

    return wrapper


def _exit_with(line):
    close_progress_bars()
    print(f"error: {line}", file=sys.stderr)
    sys.exit(2)


def close_progress_bars():
    """A live tqdm bar leaves the cursor mid-line: close it, so the error starts a line of its own."""
    bars = getattr(getattr(sys.modules.get("tqdm"), "tqdm", None), "_instances", None)
    for bar in list(bars or ()):
        bar.close()


def one_line(message):
    """A ``NatError``'s message; one re-raised by a data-loader worker carries the worker's
    traceback ("Caught NatError in DataLoader worker process 0. Original Traceback ..."): its last line."""
    if "\nOriginal Traceback" not in message:
        return message
    last = message.rstrip().splitlines()[-1]
    return last.split(": ", 1)[1] if last.split(": ", 1)[0].endswith("NatError") else last


def _is_disk_error(err):
    return isinstance(err, OSError) and err.errno in DISK_ERRORS


def _is_peer_lost(err):
    return isinstance(err, RuntimeError) and any(text in str(err) for text in PEER_LOST)


def _intact(err):
    return getattr(err, "nat_intact", DEFAULT_INTACT)


def disk_full_line(err):
    intact, then = _intact(err)
    where = err.filename if err.filename is not None else os.getcwd()
    return f"{DISK_ERRORS[err.errno]} {os.fspath(where)}; {intact}; free space and {then}"


def peer_lost_line(err):
    intact, then = _intact(err)
    rank = os.environ.get("RANK", "?")
    dead = dead_local_ranks()
    who = (f"process rank {', '.join(map(str, dead))} of this run died" if dead
           else "another process of this run died or closed its connection")
    return f"rank {rank}: {who} (torchrun's summary names its exit code); {intact}; {then}"


def dead_local_ranks():
    """The ranks of this node's torchrun processes that are gone (Linux; [] when it cannot tell).

    torchrun starts every local process as a child of its agent: the ranks on this node are
    RANK - LOCAL_RANK + 0..LOCAL_WORLD_SIZE-1, and a live sibling carries its RANK in its environment.
    """
    try:
        rank, local_rank, local_world = (int(os.environ[k]) for k in ("RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE"))
        parent, alive = os.getppid(), {rank}
        for pid in filter(str.isdigit, os.listdir("/proc")):
            with contextlib.suppress(OSError, ValueError, IndexError, KeyError):  # not one of ours
                with open(f"/proc/{pid}/stat") as f:
                    state, ppid = f.read().rsplit(")", 1)[1].split()[:2]
                if int(ppid) == parent and state not in "ZX":
                    with open(f"/proc/{pid}/environ", "rb") as f:
                        env = dict(item.split(b"=", 1) for item in f.read().split(b"\0") if b"=" in item)
                    alive.add(int(env[b"RANK"]))
    except (KeyError, ValueError, OSError):
        return []
    return sorted(set(range(rank - local_rank, rank - local_rank + local_world)) - alive)


def check_finite(loss, what="loss", terms=None):
    """Raise a NatError if a loss is NaN/inf (the subtracted KL is unbounded for a large weight).

    With ``terms`` (the named tensors the loss was summed from) the line names the first
    non-finite one and the config key most likely behind it."""
    if bool(loss.detach().isfinite().all()):
        return loss
    bad = [name for name, value in (terms or {}).items() if not bool(value.detach().isfinite().all())]
    values = (terms[bad[0]] if bad else loss).detach().flatten()
    value = values[~values.isfinite()][0].item()  # the offending value, not just the first
    term = f" ({bad[0]} = {value})" if bad else ""
    key = "model.nasty.weight or the learning rate" if not bad or "nasty" in bad[0] else "the learning rate"
    raise NatError(f"{what} became {value}{term}: training diverged (lower {key}, then rerun or --resume "
                   "from the last checkpoint)")


def check_eps(eps, upper=1.0, what="eps"):
    """Budgets live in pixel units; outside [0, upper] is a user mistake, not an attack."""
    try:
        eps = float(eps)
    except (TypeError, ValueError):
        raise NatError(f"{what}={eps!r} is not a number") from None
    if not 0.0 <= eps <= upper:
        raise NatError(f"{what}={eps} is outside [0, {upper}] (budgets are in pixel units)")
    return eps


def check_number(value, what, *, integer=False, low=None, low_inclusive=True):
    """A config value that must be a finite number (an integer with ``integer``), at least ``low``
    (above it with ``low_inclusive=False``); returned as float/int, else one NatError line."""
    kind = "an integer" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or (integer and not isinstance(
            value, numbers.Integral)):
        raise NatError(f"{what} must be {kind}, got {value!r}")
    if not math.isfinite(value):
        raise NatError(f"{what} must be finite, got {value!r}")
    if low is not None and (value < low or (value == low and not low_inclusive)):
        bound = f"at least {low}" if low_inclusive else "positive" if low == 0 else f"greater than {low}"
        raise NatError(f"{what} must be {bound}, got {value!r}")
    return int(value) if integer else float(value)
