"""The gradient-masking checklist of detection on known numbers."""


def test_checklist_on_known_numbers():
    from nat_tasks.det.checklist import checklist_attacks, run_checks

    assert checklist_attacks(8.0) == ["cls@4", "cls", "cls@16", "cls@32", "cls@255", "cls-20", "cls-40"]
    assert checklist_attacks(8.0, 5, transfer=True)[-3:] == ["cls-10", "cls-20", "transfer-cls"]
    good = run_checks({"cls@4": 40.0, "cls": 30.0, "cls@16": 10.0, "cls@32": 2.0, "cls@255": 0.0,
                       "cls-20": 29.0, "cls-40": 29.0, "transfer-cls": 35.0}, 8.0)
    assert [check.passed for check in good] == [True, True, True, True]
    assert [check.name for check in good] == [
        "A_cls mAP falls with eps", "unbounded A_cls (eps 255) reaches ~0 mAP",
        "more A_cls steps do not help the defence", "black-box not stronger than white-box"]
    assert good[2].detail == "10 steps: 30.00, 20 steps: 29.00, 40 steps: 29.00"
    bad = run_checks({"cls@4": 40.0, "cls": 30.0, "cls@16": 35.0, "cls@32": 2.0, "cls@255": 9.1,
                      "cls-20": 33.0, "cls-40": 29.0, "transfer-cls": 20.0}, 8.0)
    assert [check.passed for check in bad] == [False, False, False, False]
    assert len(run_checks({"cls@4": 4, "cls": 3, "cls@16": 2, "cls@32": 1, "cls@255": 0,
                           "cls-20": 3, "cls-40": 3}, 8.0)) == 3  # no transfer pass, no transfer check


def test_checklist_passes_are_names_of_the_attack_registry():
    from nat_tasks.det.attacks import ATTACKS, Transfer
    from nat_tasks.det.checklist import checklist_attacks

    for eps in (8.0, 3.0, 0.5):
        for spec in checklist_attacks(eps, transfer=True):
            cls, settings = ATTACKS.match(spec)
            assert cls.kind == "cls" or (cls is Transfer and settings == {"base": "cls"}), spec
