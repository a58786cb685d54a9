"""The adversary detector: built by the core from det's build_member, out of the target's
parameters, at the asked precision, checked against the target's classes and anchors."""
import pytest
import torch

from nat_tasks.core.errors import NatError

from .conftest import build_detector
from .helpers import data_batch, preprocessed


def _spec(**adversary):
    from nat_tasks.det.detectors import parse_det_nasty

    return parse_det_nasty(dict(weight=0.1, tau=2.0, adversary=adversary))


def test_adversary_stays_out_of_the_detector(trained_tiny):
    config, _, checkpoint = trained_tiny
    nasty = dict(weight=0.5, tau=2.0, adversary=dict(config=config, checkpoint=checkpoint))
    detector, _ = build_detector(config, nasty=nasty)
    vanilla, _ = build_detector(config)
    assert set(detector.state_dict()) == set(vanilla.state_dict())
    assert sum(p.numel() for p in detector.parameters()) == sum(p.numel() for p in vanilla.parameters())
    detector.train()
    member = detector.adversary.models[0]
    assert not member.training and not any(p.requires_grad for p in member.parameters())
    detector.to(torch.bfloat16)
    assert next(member.parameters()).dtype == torch.bfloat16  # follows the parent's moves


def test_adversary_precision_reaches_the_frozen_adversary(trained_tiny):
    config, _, checkpoint = trained_tiny
    nasty = dict(weight=0.5, tau=2.0, adversary=dict(config=config, checkpoint=checkpoint, precision="bfloat16"))
    detector, cfg = build_detector(config, nasty=nasty)
    exact, _ = build_detector(config, nasty={**nasty, "adversary": dict(config=config, checkpoint=checkpoint)})
    assert detector.adversary.precision == "bfloat16" and exact.adversary.precision is None
    from nat_tasks.det.pixel_space import PixelSpace

    inputs, _ = preprocessed(detector, data_batch(cfg, 2))
    pixels = PixelSpace(detector.data_preprocessor).to_pixels(inputs)
    reduced, full = detector.adversary(pixels), exact.adversary(pixels)
    assert reduced.dtype == torch.float32 and not torch.equal(reduced, full)
    torch.testing.assert_close(reduced, full, atol=0.05 * max(1.0, full.abs().max().item()), rtol=0)


def test_an_ensemble_is_the_mean_of_its_members(trained_tiny):
    from nat_tasks.det.adversary import build_frozen_adversary
    from nat_tasks.det.pixel_space import PixelSpace

    config, work_dir, checkpoint = trained_tiny
    earlier = f"{work_dir}/epoch_1.pth"
    target, cfg = build_detector(config)
    pair = build_frozen_adversary(_spec(config=config, checkpoint=[checkpoint, earlier]), target.bbox_head)
    one = build_frozen_adversary(_spec(config=config, checkpoint=checkpoint), target.bbox_head)
    other = build_frozen_adversary(_spec(config=config, checkpoint=earlier), target.bbox_head)
    assert len(pair.models) == 2
    inputs, _ = preprocessed(target, data_batch(cfg, 2))
    pixels = PixelSpace(target.data_preprocessor).to_pixels(inputs)
    torch.testing.assert_close(pair(pixels), (one(pixels) + other(pixels)) / 2)


def test_adversary_with_other_classes_or_anchors_is_one_clear_error(tiny_config, tmp_path):
    from nat_tasks.det.adversary import build_frozen_adversary

    target, _ = build_detector(tiny_config)
    for name, override, message in [
            ("classes", "model = dict(bbox_head=dict(num_classes=2))\n", "classes"),
            ("anchors", "model = dict(bbox_head=dict(anchor_generator=dict(min_sizes=[12, 40, 72])))\n",
             "anchor layout")]:
        config = tmp_path / f"{name}.py"
        config.write_text(f"_base_ = {tiny_config!r}\n{override}")
        other, _ = build_detector(str(config))
        checkpoint = tmp_path / f"{name}.pth"
        torch.save({"state_dict": other.state_dict()}, checkpoint)
        with pytest.raises(NatError, match=message):
            build_frozen_adversary(_spec(config=str(config), checkpoint=str(checkpoint)), target.bbox_head)


def test_missing_files_say_what_to_do(tiny_config, tmp_path):
    from nat_tasks.det.adversary import build_frozen_adversary

    target, _ = build_detector(tiny_config)
    absent = str(tmp_path / "none.pth")
    with pytest.raises(NatError) as err:
        build_frozen_adversary(_spec(config=tiny_config, checkpoint=absent), target.bbox_head)
    assert str(err.value) == (f"adversary checkpoint not found: {absent}; "
                              f"train it first: `python tools/train.py {tiny_config}`")
    with pytest.raises(NatError) as err:  # trained_by names the command's config
        build_frozen_adversary(_spec(config=tiny_config, checkpoint=absent, trained_by="configs/x.py"),
                               target.bbox_head)
    assert str(err.value).endswith("train it first: `python tools/train.py configs/x.py`")
    with pytest.raises(NatError, match="adversary config not found: .*nowhere.py"):
        build_frozen_adversary(_spec(config=str(tmp_path / "nowhere.py"), checkpoint=absent), target.bbox_head)
