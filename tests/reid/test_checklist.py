"""``--checklist``: the attacks it adds and its pass / fail verdicts on known mAPs (classification's
verdicts: mAP falls with eps, unbounded reaches chance, more steps not weaker, transfer not
stronger than white-box)."""
from nat_tasks.reid.attacks import Transfer, build_attack
from nat_tasks.reid.checklist import MORE_STEPS, checklist_attacks, run_checks, unbounded_attack

EPS, STEP, STEPS = 8 / 255, 1 / 255, 16


def results_for(clean, fna_by_eps, unbounded, more_steps, transfer=None):
    attacks = [build_attack("fna", eps=eps, alpha=STEP, steps=STEPS) for eps in fna_by_eps]
    attacks += [build_attack("fna", eps=EPS, alpha=STEP, steps=MORE_STEPS * STEPS),
                unbounded_attack("fna", STEPS)]
    maps = list(fna_by_eps.values()) + [more_steps, unbounded]
    results = {"clean": {"mAP": clean},
               "fna": {a.budget: {"mAP": m} for a, m in zip(attacks, maps)}}
    if transfer is not None:
        attacks.append(Transfer(attacks[0], None, None, "None"))
        results["transfer-fna"] = {attacks[-1].budget: {"mAP": transfer}}
    return results, attacks


def test_sweep_more_steps_and_unbounded_attacks():
    attacks = checklist_attacks(["fna", "sma"], EPS, STEP, STEPS)
    assert [(a.kind, round(a.eps * 255, 6)) for a in attacks[:4]] == [
        ("fna", 4), ("fna", 8), ("fna", 16), ("fna", 32)]
    more = [a for a in attacks if a.steps == MORE_STEPS * STEPS]
    assert [(a.kind, a.eps, a.alpha) for a in more] == [("fna", EPS, STEP), ("sma", EPS, STEP)]
    unbounded = attacks[-1]
    assert (unbounded.kind, unbounded.eps, unbounded.steps) == ("sma", 1.0, STEPS)
    assert unbounded.alpha * unbounded.steps >= 1  # enough to reach any image in [0, 1]


def test_verdicts():
    eps = {EPS: 0.3, 4 / 255: 0.5, 16 / 255: 0.1}
    chance = 0.05
    good = run_checks(*results_for(0.7, eps, 0.01, 0.28, transfer=0.5), chance, ["fna"], EPS, STEP,
                      STEPS)
    assert [c.passed for c in good] == [True] * 4
    assert good[0].name == "FNA mAP falls with eps" and "eps 0: 70.00" in good[0].detail
    assert good[2].name == "FNA: more steps not weaker" and good[2].detail == "16 steps: 30.00, 64 steps: 28.00"
    assert good[3].name == "black-box not stronger than white-box"
    assert good[3].detail == "FNA from None 50.00 >= FNA 8/255-16 30.00"
    bad = run_checks(*results_for(0.7, eps | {32 / 255: 0.2}, 0.2, 0.35, transfer=0.2), chance,
                     ["fna"], EPS, STEP, STEPS)
    assert [c.passed for c in bad] == [False] * 4
    assert "rises at eps 0.1255" in bad[0].detail and "limit 5" in bad[1].detail
    assert "rises at 64 steps" in bad[2].detail and "FNA from None 20.00" in bad[3].detail
