"""The evaluation attacks: the registry's names, columns and settings; every attack inside the
budget, the pixel range and each image's real area."""
import pytest
import torch

from nat_tasks.core.errors import NatError

from .conftest import build_detector
from .helpers import EPS, assert_only_real_area_moved, data_batch, padded, preprocessed


def test_the_registry_names_the_attacks_and_their_columns():
    from nat_tasks.det.attacks import ATTACKS, DAG, RAP, ClassificationPGD, LocalisationPGD, columns, kinds

    assert kinds() == ["cls", "loc", "dag", "rap"]
    assert ATTACKS.kinds() == [ClassificationPGD, LocalisationPGD, DAG, RAP]
    assert columns() == {"none": "clean", "cls": "A_cls", "loc": "A_loc", "dag": "DAG", "rap": "RAP"}
    assert ATTACKS.syntax() == "cls[@eps], loc[@eps], dag[@eps], rap[@eps]"


def test_names_carry_eps_and_the_pgd_step_scales_with_it():
    from nat_tasks.det.attacks import ATTACKS, AttackConfig

    base = AttackConfig(eps=8, alpha=2, steps=10)
    plain, wide = ATTACKS.build("cls", config=base), ATTACKS.build("cls@32", config=base)
    assert plain.config is base and (plain.name, wide.name) == ("cls", "cls@32")
    assert (wide.config.eps, wide.config.alpha, wide.config.steps) == (32.0, 8.0, 10)
    assert ATTACKS.build("dag@4.5", config=base).config.eps == 4.5
    assert ATTACKS.build("rap").config == AttackConfig()  # default budgets without a config
    assert wide.describe() == "A_cls: Linf PGD on the classification loss, eps 32, 10 steps of 8, random start"
    for bad in ("pgd", "cls@x", "cls@"):
        with pytest.raises(NatError, match="unknown detection attack"):
            ATTACKS.build(bad, config=base)
    with pytest.raises(NatError, match="outside"):
        ATTACKS.build("cls@300", config=base)


def test_attacks_stay_inside_eps_and_pixel_range(tiny_config):
    from nat_tasks.det.attacks import ATTACKS, AttackConfig, kinds
    from nat_tasks.det.pixel_space import PixelSpace

    detector, cfg = build_detector(tiny_config)
    inputs, samples = preprocessed(detector, data_batch(cfg, 2, "test_dataloader"), training=False)
    detector.eval()
    space = PixelSpace(detector.data_preprocessor)
    pixels = space.to_pixels(inputs)
    config = AttackConfig(eps=EPS, alpha=2, steps=3, dag_steps=5)
    for name in kinds():
        adv = space.to_pixels(ATTACKS.build(name, config=config)(detector, inputs, samples))
        assert (adv - pixels).abs().max() <= EPS + 1e-3, name
        assert adv.min() >= -1e-3 and adv.max() <= 255 + 1e-3, name
        if name != "dag":  # DAG stops at once when no target is classified correctly
            assert (adv - pixels).abs().max() > 0.5, f"{name} did not move"
    for p in detector.parameters():
        assert p.grad is None  # attacks never touch parameter gradients


def test_attacks_never_perturb_the_batch_padding(tiny_config):
    from nat_tasks.det.attacks import ATTACKS, AttackConfig, kinds
    from nat_tasks.det.pixel_space import PixelSpace

    detector, inputs, samples = padded(tiny_config, "test_dataloader")
    detector.eval()
    space = PixelSpace(detector.data_preprocessor)
    config = AttackConfig(eps=EPS, alpha=2, steps=2, dag_steps=3, dag_gamma=2.0)
    for name in kinds():
        adv = ATTACKS.build(name, config=config)(detector, inputs, samples)
        assert_only_real_area_moved(space.to_pixels(adv), space.to_pixels(inputs), name)


def test_an_attack_is_reproducible_for_its_seed(tiny_config):
    from nat_tasks.det.attacks import ATTACKS, AttackConfig

    detector, cfg = build_detector(tiny_config)
    inputs, samples = preprocessed(detector, data_batch(cfg, 2, "test_dataloader"), training=False)
    detector.eval()
    attack = ATTACKS.build("cls", config=AttackConfig(eps=EPS, alpha=2, steps=2))
    torch.manual_seed(123)
    first = attack(detector, inputs, samples)
    torch.manual_seed(456)
    assert torch.equal(attack(detector, inputs, samples), first)
