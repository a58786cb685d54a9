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
