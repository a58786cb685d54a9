"""The gradient-masking checklist of detection on known numbers."""


def test_checklist_on_known_numbers():
    from nat_tasks.det.checklist import checklist_attacks, run_checks

    assert checklist_attacks(8.0) == ["cls@4", "cls", "cls@16", "cls@32", "cls@255"]
    good = run_checks({"cls@4": 40.0, "cls": 30.0, "cls@16": 10.0, "cls@32": 2.0, "cls@255": 0.0}, 8.0)
    assert [check.passed for check in good] == [True, True]
    bad = run_checks({"cls@4": 40.0, "cls": 30.0, "cls@16": 35.0, "cls@32": 2.0, "cls@255": 9.1}, 8.0)
    assert [check.passed for check in bad] == [False, False]


def test_checklist_passes_are_names_of_the_attack_registry():
    from nat_tasks.det.attacks import ATTACKS
    from nat_tasks.det.checklist import checklist_attacks

    for eps in (8.0, 3.0, 0.5):
        for spec in checklist_attacks(eps):
            assert ATTACKS.match(spec)[0].kind == "cls", spec
