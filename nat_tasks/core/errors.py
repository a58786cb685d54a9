"""User-facing errors: one clear line on stderr and a non-zero exit, never a deep traceback."""
import functools
import sys


class NatError(Exception):
    """A problem the user can fix (bad path, bad option, incompatible checkpoint, diverged loss)."""


def cli_entry(main):
    """Wrap a command-line ``main`` so a ``NatError`` prints one line and exits with status 2."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except NatError as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(2)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            sys.exit(130)

    return wrapper


def check_finite(loss, what="loss"):
    """Raise a NatError if a loss is NaN/inf (the subtracted KL is unbounded for a large weight)."""
    finite = loss.detach().isfinite()
    if not bool(finite.all()):
        bad = loss.detach()[~finite].flatten()[0].item()  # the offending value, not just the first
        raise NatError(f"{what} became {bad}: training diverged (lower the nasty weight or the learning rate)")
    return loss


def check_eps(eps, upper=1.0, what="eps"):
    """Budgets live in pixel units; outside [0, upper] is a user mistake, not an attack."""
    try:
        eps = float(eps)
    except (TypeError, ValueError):
        raise NatError(f"{what}={eps!r} is not a number") from None
    if not 0.0 <= eps <= upper:
        raise NatError(f"{what}={eps} is outside [0, {upper}] (budgets are in pixel units)")
    return eps
