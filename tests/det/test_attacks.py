"""The evaluation attacks: the registry's names, columns and settings; every attack inside the
budget, the pixel range and each image's real area."""
import dataclasses

import pytest
import torch

from nat_tasks.core.errors import NatError

from .conftest import build_detector
from .helpers import EPS, assert_only_real_area_moved, data_batch, padded, preprocessed


def test_the_registry_names_the_attacks_and_their_columns():
    from nat_tasks.det.attacks import (ATTACKS, DAG, RAP, ClassificationPGD, LocalisationPGD, NatAdaptive,
                                       TOGFabrication, TOGMislabeling, TOGUntargeted, TOGVanishing, Transfer,
                                       columns, default_attacks, kinds, white_box_kinds)

    tog = ["tog-vanishing", "tog-fabrication", "tog-mislabeling", "tog-untargeted"]
    assert kinds() == ["cls", "loc", "dag", "rap", *tog, "nat-adaptive"]
    assert white_box_kinds() == ["cls", "loc", "dag", "rap", *tog]
    assert default_attacks() == ["none", *white_box_kinds()]
    assert ATTACKS.kinds() == [ClassificationPGD, LocalisationPGD, DAG, RAP, TOGVanishing, TOGFabrication,
                               TOGMislabeling, TOGUntargeted, NatAdaptive, Transfer]
    assert columns() == {"none": "clean", "cls": "A_cls", "loc": "A_loc", "dag": "DAG", "rap": "RAP",
                         "tog-vanishing": "TOG-vanishing", "tog-fabrication": "TOG-fabrication",
                         "tog-mislabeling": "TOG-mislabeling", "tog-untargeted": "TOG-untargeted",
                         "nat-adaptive": "NAT-adaptive"}
    assert ATTACKS.syntax().startswith("cls[-steps][@eps], loc[-steps][@eps], ")
    assert ATTACKS.syntax().endswith("nat-adaptive[-steps][@eps], transfer-<attack>")


def test_names_carry_eps_and_the_pgd_step_scales_with_it():
    from nat_tasks.det.attacks import ATTACKS, AttackConfig

    base = AttackConfig(eps=8, alpha=2, steps=10)
    plain, wide = ATTACKS.build("cls", config=base), ATTACKS.build("cls@32", config=base)
    assert plain.config is base and (plain.name, wide.name) == ("cls", "cls@32")
    assert (wide.config.eps, wide.config.alpha, wide.config.steps) == (32.0, 8.0, 10)
    assert ATTACKS.build("dag@4.5", config=base).config.eps == 4.5
    assert ATTACKS.build("rap").config == AttackConfig()  # default budgets without a config
    assert wide.describe() == "A_cls: Linf PGD on the classification loss, eps 32, 10 steps of 8, random start"
    longer = ATTACKS.build("tog-vanishing-40@16", config=base)
    assert (longer.config.steps, longer.config.eps, longer.config.alpha) == (40, 16.0, 4.0)
    for bad in ("pgd", "cls@x", "cls@", "cls-"):
        with pytest.raises(NatError, match="unknown detection attack"):
            ATTACKS.build(bad, config=base)
    with pytest.raises(NatError, match="outside"):
        ATTACKS.build("cls@300", config=base)


def test_attacks_stay_inside_eps_and_pixel_range(tiny_config):
    from nat_tasks.det.attacks import ATTACKS, AttackConfig, white_box_kinds
    from nat_tasks.det.pixel_space import PixelSpace

    detector, cfg = build_detector(tiny_config)
    inputs, samples = preprocessed(detector, data_batch(cfg, 2, "test_dataloader"), training=False)
    detector.eval()
    space = PixelSpace(detector.data_preprocessor)
    pixels = space.to_pixels(inputs)
    config = AttackConfig(eps=EPS, alpha=2, steps=3, dag_steps=5)
    for name in white_box_kinds():
        adv = space.to_pixels(ATTACKS.build(name, config=config)(detector, inputs, samples))
        assert (adv - pixels).abs().max() <= EPS + 1e-3, name
        assert adv.min() >= -1e-3 and adv.max() <= 255 + 1e-3, name
        if name != "dag":  # DAG stops at once when no target is classified correctly
            assert (adv - pixels).abs().max() > 0.5, f"{name} did not move"
    for p in detector.parameters():
        assert p.grad is None  # attacks never touch parameter gradients


def test_attacks_never_perturb_the_batch_padding(tiny_config):
    from nat_tasks.det.attacks import ATTACKS, AttackConfig, white_box_kinds
    from nat_tasks.det.pixel_space import PixelSpace

    detector, inputs, samples = padded(tiny_config, "test_dataloader")
    detector.eval()
    space = PixelSpace(detector.data_preprocessor)
    config = AttackConfig(eps=EPS, alpha=2, steps=2, dag_steps=3, dag_gamma=2.0)
    for name in white_box_kinds():
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
    other_seed = ATTACKS.build("cls", config=AttackConfig(eps=EPS, alpha=2, steps=2, seed=1))
    assert not torch.equal(other_seed(detector, inputs, samples), first)


@pytest.mark.parametrize("name", ["cls", "dag"])
def test_an_image_is_attacked_alike_whatever_batch_it_is_in(tiny_config, name):
    """Random starts and DAG's labels come from each image's index: a sharded or resumed run (other
    batches) attacks every image as one run does; another index draws another start."""
    from nat_tasks.det.attacks import ATTACKS, AttackConfig

    detector, cfg = build_detector(tiny_config)
    inputs, samples = preprocessed(detector, data_batch(cfg, 4, "test_dataloader"), training=False)
    detector.eval()
    attack = ATTACKS.build(name, config=AttackConfig(eps=EPS, alpha=2, steps=2, dag_steps=3, dag_gamma=2.0))
    whole = attack(detector, inputs, samples, image_indices=[10, 11, 12, 13])
    halves = torch.cat([attack(detector, inputs[:2], samples[:2], image_indices=[10, 11]),
                        attack(detector, inputs[2:], samples[2:], image_indices=[12, 13])])
    torch.testing.assert_close(halves, whole)
    if name == "cls":
        assert not torch.equal(attack(detector, inputs, samples, image_indices=[0, 1, 2, 3]), whole)


def test_restarts_keep_per_image_the_larger_final_loss(tiny_config):
    from nat_tasks.det.attacks import ATTACKS, AttackConfig
    from nat_tasks.det.pixel_space import PixelSpace

    from .helpers import task_losses_of

    detector, cfg = build_detector(tiny_config)
    inputs, samples = preprocessed(detector, data_batch(cfg, 3, "test_dataloader"), training=False)
    detector.eval()
    space, loss = PixelSpace(detector.data_preprocessor), task_losses_of(detector, inputs, samples).task("cls")
    config = AttackConfig(eps=EPS, alpha=2, steps=2)
    one = ATTACKS.build("cls", config=config)(detector, inputs, samples)
    three = ATTACKS.build("cls", config=dataclasses.replace(config, restarts=3))
    assert "3 restarts" in three.describe()
    with torch.no_grad():  # the first restart draws the single run's start, so it can only improve
        assert torch.all(loss(space.to_pixels(three(detector, inputs, samples))) >= loss(space.to_pixels(one)) - 1e-6)
    with pytest.raises(NatError, match="restarts"):
        AttackConfig(restarts=0)
