"""The gradient-masking checks of detection (Carlini et al. 2019, "On evaluating adversarial
robustness"), the verdicts classification's ``--checklist`` gives, on the A_cls attack:

- mAP must not rise as eps grows (0.5x, 1x, 2x, 4x eps);
- an unbounded budget (eps 255: any image is reachable) must leave ~0 mAP;
- more iterations must not help the defence (A_cls with 1x, 2x, 4x the steps);
- a transfer attack (A_cls crafted on a surrogate detector, ``--transfer-from``) must not beat
  the white-box A_cls.

A failure does not prove gradient masking; it says the white-box numbers need understanding
before they are trusted.
"""
from ..core.sanity import blackbox_not_stronger, falls_with_eps, more_effort_not_weaker, unbounded_breaks_all

CHECK_ATTACK = "cls"
SWEEP = (0.5, 1.0, 2.0, 4.0)
EFFORT = (1, 2, 4)
UNBOUNDED_EPS = 255.0
TRANSFER = f"transfer-{CHECK_ATTACK}"


def _spec(eps, base_eps):
    return CHECK_ATTACK if eps == base_eps else f"{CHECK_ATTACK}@{eps:g}"


def _effort_spec(factor, base_steps):
    return CHECK_ATTACK if factor == 1 else f"{CHECK_ATTACK}-{factor * base_steps}"


def checklist_attacks(base_eps, base_steps=10, transfer=False):
    """The attack passes the checks need (``AdversarialTestLoop`` specs), ``'cls'`` included;
    ``transfer``: a surrogate detector is given (``transfer-cls``)."""
    specs = [_spec(factor * base_eps, base_eps) for factor in SWEEP] + [_spec(UNBOUNDED_EPS, base_eps)]
    specs += [_effort_spec(factor, base_steps) for factor in EFFORT[1:]]
    return specs + ([TRANSFER] if transfer else [])


def run_checks(map_by_attack, base_eps, base_steps=10):
    """``map_by_attack``: {spec: mAP in %} holding every ``checklist_attacks`` pass -> [Check]
    (the transfer check when ``transfer-cls`` ran)."""
    sweep = {factor * base_eps: map_by_attack[_spec(factor * base_eps, base_eps)] for factor in SWEEP}
    effort = {f"{factor * base_steps} steps": map_by_attack[_effort_spec(factor, base_steps)] for factor in EFFORT}
    checks = [falls_with_eps(sweep, name="A_cls mAP falls with eps"),
              unbounded_breaks_all(map_by_attack[_spec(UNBOUNDED_EPS, base_eps)],
                                   name=f"unbounded A_cls (eps {UNBOUNDED_EPS:g}) reaches ~0 mAP"),
              more_effort_not_weaker(effort, name="more A_cls steps do not help the defence")]
    if TRANSFER in map_by_attack:
        checks.append(blackbox_not_stronger({"transfer A_cls": map_by_attack[TRANSFER]}, "A_cls",
                                            map_by_attack[CHECK_ATTACK]))
    return checks
