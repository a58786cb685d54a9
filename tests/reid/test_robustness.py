"""The Table 12 layout (scores of real models: test_attacks, test_evaluation)."""
from nat_tasks.reid.attacks import build_attack
from nat_tasks.reid.robustness import robustness_table


def test_table_layout():
    attack = build_attack("fna", eps=8 / 255, alpha=1 / 255, steps=16)
    scores = {"mAP": 0.5, "mAP_ci": [0.4, 0.6], "rank1": 0.25, "rank1_ci": [0.2, 0.3]}
    rows = [("None", {"clean": scores, "fna": {"8/255-16": scores}}, {})]
    differences = [("AMD - None", {"clean": scores, "fna": {"8/255-16": scores}})]
    assert robustness_table(rows, [attack], differences) == (
        "| Defense | Clean | FNA 8/255-16 |\n"
        "|---|---|---|\n"
        "| None | 50.0 [40.0, 60.0] / 25.0 [20.0, 30.0] | 50.0 [40.0, 60.0] / 25.0 [20.0, 30.0] |\n"
        "| AMD - None (paired) | 50.0 [40.0, 60.0] / 25.0 [20.0, 30.0] "
        "| 50.0 [40.0, 60.0] / 25.0 [20.0, 30.0] |\n")
