"""Gradient-masking checks of a re-ID evaluation (``--checklist``), on the core ``sanity`` rules:
the verdicts of classification's checklist.

Per metric attack kind, on the same queries, at the first ``--attack-eps``:

- mAP falls with eps: clean (eps 0) and ``EPS_FACTORS`` x the first ``--attack-eps`` (with every
  other budget of that kind that was evaluated) must not rise as eps grows;
- an unbounded attack (eps = 1, ``steps`` sign steps of ``1 / steps``, enough to reach any image)
  must bring mAP down to a random ranking's, ``ranking.chance_scores``: an attack that cannot
  do that with no budget at all is being stopped by the model's gradients, not by robustness;
- more iterations do not help the defence: ``MORE_STEPS`` x the steps (same eps and step size)
  must not leave a higher mAP;
- with a surrogate (``--transfer-from``): the attack crafted on it and transferred must not beat
  the best white-box attack of that budget.
"""
from nat_tasks.core.sanity import (blackbox_not_stronger, falls_with_eps, more_effort_not_weaker,
                                   unbounded_breaks_all)

from .attacks import Transfer, build_attack

EPS_FACTORS = (0.5, 1, 2, 4)
MORE_STEPS = 4


def unbounded_attack(kind, steps):
    return build_attack(kind, eps=1.0, alpha=1.0 / steps, steps=steps)


def checklist_attacks(kinds, eps, step, steps):
    """The extra attacks the checks need: the eps sweep, more steps and the unbounded attack of
    each kind."""
    return [build_attack(kind, eps=factor * eps, alpha=step, steps=steps)
            for kind in kinds for factor in EPS_FACTORS if factor * eps < 1] + [
        build_attack(kind, eps=eps, alpha=step, steps=MORE_STEPS * steps) for kind in kinds] + [
        unbounded_attack(kind, steps) for kind in kinds]


def transfer_attacks(kinds, eps, step, steps, surrogate, guide_features, source):
    """Each kind at this budget crafted on ``surrogate`` (its clean query features
    ``guide_features``), named after ``source``."""
    return [Transfer(build_attack(kind, eps=eps, alpha=step, steps=steps), surrogate,
                     guide_features, source) for kind in kinds]


def _map(results, attack):
    return 100 * results[attack.kind][attack.budget]["mAP"]


def run_checks(results, attacks, chance_map, kinds, eps, step, steps):
    """``[Check]`` for one model's ``results`` (``evaluate_robustness``) over ``attacks``."""
    checks = []
    for kind in kinds:
        unbounded = unbounded_attack(kind, steps)
        name = unbounded.column
        curve = {0.0: 100 * results["clean"]["mAP"]}
        curve.update({a.eps: _map(results, a) for a in attacks
                      if a.kind == kind and a.steps == steps and a != unbounded})
        checks.append(falls_with_eps(curve, name=f"{name} mAP falls with eps"))
        checks.append(unbounded_breaks_all(
            _map(results, unbounded), limit=100 * chance_map,
            name=f"unbounded {name} (eps 1) mAP <= chance"))
        effort = [build_attack(kind, eps=eps, alpha=step, steps=n) for n in (steps, MORE_STEPS * steps)]
        checks.append(more_effort_not_weaker({f"{a.steps} steps": _map(results, a) for a in effort},
                                             name=f"{name}: more steps not weaker"))
    transfer = {a.column: _map(results, a) for a in attacks if isinstance(a, Transfer)}
    if transfer:
        white_box = min((a for a in attacks if not isinstance(a, Transfer) and a.eps == eps
                         and a.steps == steps and a.alpha == step), key=lambda a: _map(results, a))
        checks.append(blackbox_not_stronger(transfer, white_box.describe(), _map(results, white_box)))
    return checks
