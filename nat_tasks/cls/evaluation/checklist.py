"""The gradient-masking checklist of a classifier (``eval_cls.py --checklist``).

Runs, on one fixed set of examples, the attacks the sanity checks of Carlini et al. 2019 ("On
evaluating adversarial robustness") and Athalye et al. 2018 need, then the checks themselves
(``core.sanity``):

- AutoAttack <= PGD-20, PGD-100, PGD-20 with 5 restarts and CW-20 (a stronger attack never finds
  fewer adversarial examples);
- PGD-20 accuracy does not rise with eps (0.5x, 1x, 2x, 4x the budget, capped at 1);
- an unbounded PGD-100 (eps = 1, step 2.5/100, Madry et al.'s rule) leaves <= 1 %;
- more PGD steps (20 -> 100) and more restarts (1 -> 5) do not raise accuracy;
- black-box attacks (Square; transfer PGD-20 / CW-20 from a surrogate when one is given) are not
  stronger than the best white-box attack;
- the PGD-20 - AutoAttack gap stays under a threshold (the paper's own NAT rows show 10-20 points).
"""
from dataclasses import replace

from nat_tasks.core import sanity

from nat_tasks.cls.evaluation.attacks import ThreatModel
from nat_tasks.cls.evaluation.evaluation import evaluate

EPS_FACTORS = (0.5, 1.0, 2.0, 4.0)
UNBOUNDED = ThreatModel(eps=1.0, alpha=2.5 / 100)
WEAKER_WHITE_BOX = ("pgd20", "pgd100", "pgd20x5", "cw20")


def gradient_masking_checklist(model, x, y, threat, *, surrogate=None, square_queries=5000, strongest="aa",
                               gap_threshold=sanity.DEFAULT_GAP, tolerance=sanity.DEFAULT_TOLERANCE,
                               log=print, run=None, **evaluate_kwargs):
    """``(results, checks)``: every attack's result (with its ``eps``) and the list of ``Check`` objects.

    ``strongest``: the attack every other one is compared with (standard AutoAttack; a cheaper one,
    e.g. ``apgd-ce-20``, only for quick looks). ``evaluate_kwargs`` go to ``evaluate`` (batch_size,
    seed, device, num_classes, progress). ``run(attacks, threat)``: the results of ``attacks`` on
    these examples (default: ``evaluate``; the report keeps each attack's results on disk, see
    ``attack_cache``).
    """
    if run is None:
        def run(attacks, threat):
            return evaluate(model, x, y, attacks, threat, surrogate=surrogate, log=log, **evaluate_kwargs)
    square, white_box = _square(square_queries), (*WEAKER_WHITE_BOX, strongest)
    results = _at_eps(run(checklist_attacks(strongest, square_queries, surrogate is not None), threat), threat.eps)
    sweep = {threat.eps: _accuracy(results, "pgd20")}
    for factor in EPS_FACTORS:
        scaled = replace(threat, eps=min(1.0, factor * threat.eps), alpha=min(1.0, factor * threat.alpha))
        if scaled.eps in sweep:
            continue
        scaled_results = _at_eps(run(["pgd20"], scaled), scaled.eps)
        results += scaled_results
        sweep[scaled.eps] = scaled_results[0]["accuracy"]
    unbounded = _at_eps(run(["pgd100"], UNBOUNDED), UNBOUNDED.eps)
    results += unbounded

    acc = {r["attack"]: r["accuracy"] for r in results if r["eps"] == threat.eps}
    white_box_best = min(white_box, key=lambda name: acc[name])
    black_box = {name: acc[name] for name in acc if name == square or name.startswith("transfer-")}
    checks = [
        sanity.strongest_is_lowest(strongest, acc[strongest], {n: acc[n] for n in WEAKER_WHITE_BOX}, tolerance),
        sanity.falls_with_eps(sweep, tolerance, name="PGD-20 accuracy falls with eps"),
        sanity.unbounded_breaks_all(unbounded[0]["accuracy"], name="unbounded PGD-100 (eps=1) reaches ~0 %"),
        sanity.more_effort_not_weaker({"pgd20": acc["pgd20"], "pgd100": acc["pgd100"]}, tolerance,
                                      name="more PGD steps not weaker"),
        sanity.more_effort_not_weaker({"pgd20": acc["pgd20"], "pgd20x5": acc["pgd20x5"]}, tolerance,
                                      name="more PGD restarts not weaker"),
        sanity.blackbox_not_stronger(black_box, white_box_best, acc[white_box_best], tolerance),
        sanity.gap_within("pgd20", acc["pgd20"], strongest, acc[strongest], gap_threshold),
    ]
    return results, checks


def checklist_attacks(strongest="aa", square_queries=5000, transfer=False):
    """The attacks the checklist runs at the threat model's budget: clean, the white-box ones (the
    ``strongest`` last), Square and, with a surrogate (``transfer``), PGD-20 / CW-20 crafted on it."""
    return ["clean", *WEAKER_WHITE_BOX, strongest, _square(square_queries)] + (
        ["transfer-pgd20", "transfer-cw20"] if transfer else [])


def _square(queries):
    return "square" if queries == 5000 else f"square{int(queries)}"


def _at_eps(results, eps):
    return [dict(r, eps=eps) for r in results]


def _accuracy(results, attack):
    return next(r["accuracy"] for r in results if r["attack"] == attack)
