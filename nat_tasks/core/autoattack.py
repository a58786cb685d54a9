"""AutoAttack through ``pyautoattack`` (the official attack code), never re-implemented here."""
import logging

import torch

from .errors import NatError

AUTOATTACK_ATTACKS = ("apgd-ce", "apgd-dlr", "apgd-t", "fab", "fab-t", "square")


def autoattack(model, x, y, *, eps, norm="Linf", version="standard", attacks=None, apgd_steps=None,
               square_queries=None, num_classes=None, batch_size=500, seed=0, device=None, verbose=False):
    """Run AutoAttack and return ``(x_adv, robust)`` with ``robust`` a bool tensor per sample.

    - ``version='standard'``: APGD-CE, APGD-T (9 targets), FAB-T, Square (5000 queries).
    - ``version='custom'`` with ``attacks`` (e.g. ``['apgd-ce']``) and optionally ``apgd_steps``
      (e.g. APGD-CE with 10/20/50/100 steps, one restart) and ``square_queries`` (Square's budget).
    - ``num_classes``: caps the targeted attacks at C-1 target classes (read off one forward
      pass when not given).
    pyautoattack 0.2.0's own resumable state file is not exposed: its restore path is broken
    (the saved attack list is compared with a set; ``y_adv`` is undefined after a restore).
    The model must be in eval mode and take [0, 1] images.
    """
    from pyautoattack import AutoAttack  # heavy import; only evaluation needs it

    if version == "custom":
        unknown = sorted(set(attacks or ()) - set(AUTOATTACK_ATTACKS))
        if not attacks or unknown:
            raise NatError(f"custom AutoAttack needs attacks from {AUTOATTACK_ATTACKS}, got {attacks}")
    device = device or x.device
    adversary = AutoAttack(model, eps=eps, norm=norm, version=version, seed=seed, device=device,
                           attacks=list(attacks) if version == "custom" else None)
    if version == "custom":
        adversary.apgd.n_restarts = 1
    if apgd_steps is not None:
        for apgd in (adversary.apgd, adversary.apgd_targeted):
            _set_apgd_steps(apgd, int(apgd_steps))
    if square_queries is not None:
        if version != "custom":
            raise NatError("square_queries changes a custom AutoAttack only (standard keeps 5000)")
        adversary.square.n_queries = int(square_queries)
    if num_classes is None:
        with torch.no_grad():
            num_classes = model(x[:1].to(device)).shape[-1]
    # Targeted attacks use at most C-1 target classes (9 on 10-class data sets).
    adversary.apgd_targeted.n_target_classes = min(adversary.apgd_targeted.n_target_classes,
                                                   num_classes - 1)
    adversary.fab.n_target_classes = min(adversary.fab.n_target_classes, num_classes - 1)
    logging.getLogger("auto-attack").setLevel(logging.DEBUG if verbose else logging.WARNING)
    # pyautoattack reshapes gradients with .view(), which fails on non-contiguous (e.g. permuted) inputs.
    x_adv, y_adv = adversary.run_standard_evaluation(x.contiguous(), y, batch_size=batch_size)
    return x_adv, (y_adv.to(y.device) == y)


def _set_apgd_steps(apgd, steps):
    """Set APGD's iteration count together with its step-size schedule.

    APGD halves its step size at checkpoints derived from ``n_iter`` (22%, then shrinking by 3%,
    at least 6%); pyautoattack computes them in ``__init__`` only, so changing ``n_iter`` alone
    would run e.g. 10 steps with the checkpoints of 100 (no step-size decay at all).
    """
    apgd.n_iter = apgd.n_iter_orig = steps
    apgd.n_iter_2 = max(int(0.22 * steps), 1)
    apgd.n_iter_min = max(int(0.06 * steps), 1)
    apgd.size_decr = max(int(0.03 * steps), 1)


def autoattack_settings(version="standard", attacks=None, apgd_steps=None, square_queries=None):
    """A human-readable description printed next to every AutoAttack result."""
    if version == "standard":
        return "AutoAttack standard: APGD-CE (100 it), APGD-T (9 targets, 100 it), FAB-T (9 targets), Square (5000 q)"
    steps = f", {apgd_steps} it" if apgd_steps else ""
    queries = f", {square_queries} q" if square_queries else ""
    return f"AutoAttack custom: {', '.join(attacks or [])}{steps}{queries}, 1 restart"
