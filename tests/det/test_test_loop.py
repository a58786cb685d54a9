"""AdversarialTestLoop's passes: 'none' is clean, everything else a name of the attack registry."""
import pytest

from nat_tasks.core.errors import NatError


def test_passes_are_built_from_the_registry():
    from nat_tasks.det.attacks import AttackConfig, ClassificationPGD, DAG
    from nat_tasks.det.test_loop import build_attack

    config = AttackConfig(eps=8, alpha=2, steps=10)
    assert build_attack("none", config) is None
    cls16 = build_attack("cls@16", config)
    assert isinstance(cls16, ClassificationPGD) and (cls16.config.eps, cls16.config.alpha) == (16.0, 4.0)
    dag = build_attack("dag", config, gt_in_original_scale=False)
    assert isinstance(dag, DAG) and dag.config is config and dag.gt_in_original_scale is False
    for bad in ("pgd", "none@4", "cls@x"):
        with pytest.raises(NatError):
            build_attack(bad, config)


def test_the_table_flags_columns_above_clean_and_shows_the_worst_case():
    from .helpers import load_tool

    def row(value):
        return {"mAP": value, "n_images": 4, "images_per_s": 2.0, "mAP_ci95": [value - 1, value + 1]}

    summary = {"config": "configs/det/demo_mtd.py", "attack_cfg": {"eps": 8}, "ci_resamples": 20,
               "results": {"none": row(50.0), "cls": row(55.0), "dag": row(10.0)},
               "worst_case": {"mAP": 9.0, "n_images": 4, "from": {"dag": 4}, "mAP_ci95": [8.0, 10.0]}}
    table = load_tool("test").markdown(summary)
    assert "| clean | A_cls | DAG | worst case |" in table
    assert "| demo_mtd | 4 | 50.0 [49.0, 51.0] | 55.0 [54.0, 56.0] (!) | 10.0 [9.0, 11.0] | 9.0 [8.0, 10.0] |" in table
    assert "(!) above clean" in table
    summary["results"]["cls"] = row(40.0)
    assert "(!)" not in load_tool("test").markdown(summary)
