"""``--checklist``: the attacks it adds and its pass / fail verdicts on known mAPs."""
from nat_tasks.reid.attacks import build_attack
from nat_tasks.reid.checklist import checklist_attacks, run_checks, unbounded_attack

STEP, STEPS = 1 / 255, 16


def results_for(clean, fna_by_eps, unbounded):
    attacks = [build_attack("fna", eps=eps, alpha=STEP, steps=STEPS) for eps in fna_by_eps]
    results = {"clean": {"mAP": clean},
               "fna": {a.budget: {"mAP": m} for a, m in zip(attacks, fna_by_eps.values())}}
    results["fna"][unbounded_attack("fna", STEPS).budget] = {"mAP": unbounded}
    return results, attacks + [unbounded_attack("fna", STEPS)]


def test_sweep_and_unbounded_attacks():
    attacks = checklist_attacks(["fna", "sma"], 8 / 255, STEP, STEPS)
    assert [(a.kind, round(a.eps * 255, 6)) for a in attacks[:4]] == [
        ("fna", 4), ("fna", 8), ("fna", 16), ("fna", 32)]
    unbounded = attacks[-1]
    assert (unbounded.kind, unbounded.eps, unbounded.steps) == ("sma", 1.0, STEPS)
    assert unbounded.alpha * unbounded.steps >= 1  # enough to reach any image in [0, 1]


def test_verdicts():
    eps = {4 / 255: 0.5, 8 / 255: 0.3, 16 / 255: 0.1}
    chance = 0.05
    good = run_checks(*results_for(0.7, eps, 0.01), chance, ["fna"], STEPS)
    assert [c.passed for c in good] == [True, True]
    assert good[0].name == "FNA mAP falls with eps" and "eps 0: 70.00" in good[0].detail
    rising = run_checks(*results_for(0.7, eps | {32 / 255: 0.2}, 0.2), chance, ["fna"], STEPS)
    assert [c.passed for c in rising] == [False, False]
    assert "rises at eps 0.1255" in rising[0].detail and "limit 5" in rising[1].detail
