"""Gradient-masking checks of a re-ID evaluation (``--checklist``), on the core ``sanity`` rules.

Per attack kind, on the same queries:

- mAP falls with eps: clean (eps 0) and ``EPS_FACTORS`` x the first ``--attack-eps`` (with every
  other budget of that kind that was evaluated) must not rise as eps grows;
- an unbounded attack (eps = 1, ``steps`` sign steps of ``1 / steps``, enough to reach any image)
  must bring mAP down to a random ranking's, ``ranking.chance_scores``: an attack that cannot
  do that with no budget at all is being stopped by the model's gradients, not by robustness.
"""
from nat_tasks.core.sanity import falls_with_eps, unbounded_breaks_all

from .attacks import build_attack

EPS_FACTORS = (0.5, 1, 2, 4)


def unbounded_attack(kind, steps):
    return build_attack(kind, eps=1.0, alpha=1.0 / steps, steps=steps)


def checklist_attacks(kinds, eps, step, steps):
    """The extra attacks the checks need: the eps sweep and the unbounded attack of each kind."""
    return [build_attack(kind, eps=factor * eps, alpha=step, steps=steps)
            for kind in kinds for factor in EPS_FACTORS if factor * eps < 1] + [
        unbounded_attack(kind, steps) for kind in kinds]


def run_checks(results, attacks, chance_map, kinds, steps):
    """``[Check]`` for one model's ``results`` (``evaluate_robustness``) over ``attacks``."""
    checks = []
    for kind in kinds:
        unbounded = unbounded_attack(kind, steps)
        name = unbounded.column
        curve = {0.0: 100 * results["clean"]["mAP"]}
        curve.update({a.eps: 100 * results[kind][a.budget]["mAP"] for a in attacks
                      if a.kind == kind and a.steps == steps and a != unbounded})
        checks.append(falls_with_eps(curve, name=f"{name} mAP falls with eps"))
        checks.append(unbounded_breaks_all(
            100 * results[kind][unbounded.budget]["mAP"], limit=100 * chance_map,
            name=f"unbounded {name} (eps 1) mAP <= chance"))
    return checks
