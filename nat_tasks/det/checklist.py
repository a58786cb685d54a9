"""The gradient-masking checks of detection (Carlini et al. 2019, "On evaluating adversarial
robustness"), on the A_cls attack: mAP must not rise as eps grows (0.5x, 1x, 2x, 4x eps), and an
unbounded budget (eps 255: any image is reachable) must leave ~0 mAP. A failure does not prove
gradient masking; it says the white-box numbers need understanding before they are trusted.
"""
from ..core.sanity import falls_with_eps, unbounded_breaks_all

CHECK_ATTACK = "cls"
SWEEP = (0.5, 1.0, 2.0, 4.0)
UNBOUNDED_EPS = 255.0


def _spec(eps, base_eps):
    return CHECK_ATTACK if eps == base_eps else f"{CHECK_ATTACK}@{eps:g}"


def checklist_attacks(base_eps):
    """The attack passes the checks need (``AdversarialTestLoop`` specs), ``'cls'`` included."""
    return [_spec(factor * base_eps, base_eps) for factor in SWEEP] + [_spec(UNBOUNDED_EPS, base_eps)]


def run_checks(map_by_attack, base_eps):
    """``map_by_attack``: {spec: mAP in %} holding every ``checklist_attacks`` pass -> [Check]."""
    sweep = {factor * base_eps: map_by_attack[_spec(factor * base_eps, base_eps)] for factor in SWEEP}
    return [falls_with_eps(sweep, name="A_cls mAP falls with eps"),
            unbounded_breaks_all(map_by_attack[_spec(UNBOUNDED_EPS, base_eps)],
                                 name=f"unbounded A_cls (eps {UNBOUNDED_EPS:g}) reaches ~0 mAP")]
