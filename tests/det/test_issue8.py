"""Trustworthy detection numbers: nasty anchors and scale, eval-mode MTD, padding, RAP, DAG
targets, the checklist and the mAP interval."""
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from nat_tasks.core.errors import NatError
from nat_tasks.core.nasty import NastyLoss

from .conftest import build_detector
from .helpers import data_batch, preprocessed
from .test_components import _retina

EPS = 8.0


@pytest.mark.parametrize("head", ["ssd", "retina"])
def test_nasty_anchor_modes_mean_what_they_say(tiny_config, head):
    from nat_tasks.det.head_adapters import head_adapter

    detector, cfg = build_detector(tiny_config) if head == "ssd" else _retina(tiny_config)
    inputs, samples = preprocessed(detector, data_batch(cfg, 4))
    adapter = head_adapter(detector.bbox_head)
    cls_scores, _ = adapter.forward(detector, inputs)
    logits = adapter.flat_logits(cls_scores)
    targets = adapter.targets(cls_scores, samples)
    every, sampled = adapter.nasty_mask(logits, targets, "all"), adapter.nasty_mask(logits, targets, "sampled")
    # allowed_border=-1: every anchor is inside, so 'all' is every anchor ...
    assert every.all()
    # ... including those the classification loss does not train on ('sampled' leaves them out).
    assert (every & ~sampled).any() and not (sampled & ~every).any()
    if head == "retina":  # RetinaNet's assigner ignores IoU 0.4..0.5: 'all' keeps those anchors
        ignored = targets.label_weights == 0
        assert ignored.any() and every[ignored].all() and not sampled[ignored].any()
    with pytest.raises(NatError, match="anchors"):
        adapter.nasty_mask(logits, targets, "most")


def test_nasty_term_is_a_sum_over_the_chosen_anchors_per_positive():
    from nat_tasks.det.detectors import MTDNATMixin

    # 2 images x 3 anchors x (2 classes + background). Target uniform, adversary (0, ln 2, 0):
    # KL(p_t || p_a) = 1/3 (ln(4/3) + ln(2/3) + ln(4/3)) = ln(32/27) / 3 per anchor.
    logits = torch.zeros(2, 3, 3, requires_grad=True)
    adversary = torch.zeros(2, 3, 3)
    adversary[..., 1] = math.log(2.0)
    chosen = torch.tensor([[True, True, False], [False, True, False]])
    model = SimpleNamespace(nasty=NastyLoss(1.0, 1.0, scale_by_tau2=False, reduction="sum"),
                            nasty_anchors="sampled", adversary=lambda pixels: adversary)
    adapter = SimpleNamespace(flat_logits=lambda scores: logits, nasty_mask=lambda l, t, a: chosen)
    task_losses = SimpleNamespace(targets=SimpleNamespace(avg_factor=2.0), data_samples=None)
    term = MTDNATMixin._nasty_term(model, adapter, task_losses, None, torch.zeros(2, 3, 4, 4))
    # 3 chosen anchors, 2 positives: -3 KL / 2 (a mean over the chosen anchors would be -KL).
    torch.testing.assert_close(term, torch.tensor(-3 * math.log(32 / 27) / 3 / 2))


def test_nasty_reduction_is_not_a_config_key(trained_tiny):
    config, _, checkpoint = trained_tiny
    with pytest.raises(NatError, match="reduction is fixed"):
        build_detector(config, nasty=dict(weight=0.1, tau=2.0, reduction="mean",
                                          adversary=dict(config=config, checkpoint=checkpoint)))


def _batchnorm_counts(detector):
    return {name: int(m.num_batches_tracked) for name, m in detector.named_modules()
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)}


def test_mtd_crafts_in_eval_mode_and_leaves_batchnorm_statistics_alone(tiny_config):
    detector, cfg = build_detector(tiny_config, mtd=dict(eps=EPS, alpha=4, steps=2))
    inputs, samples = preprocessed(detector, data_batch(cfg, 2))
    detector.train()
    before = _batchnorm_counts(detector)
    assert before
    detector(inputs, samples, mode="loss")
    # Exactly one train-mode pass (the training forward) updated the statistics; the two
    # candidates' 2 steps each and their selection did not.
    assert _batchnorm_counts(detector) == {name: count + 1 for name, count in before.items()}
    assert detector.training and all(m.training for m in detector.modules())


def _padded(tiny_config, split):
    """A batch resized to 100x90 and padded to 128x96 (pad_size_divisor 32)."""
    detector, cfg = build_detector(tiny_config)
    cfg[split].dataset.pipeline[1 if split == "test_dataloader" else 2].scale = (100, 90)
    detector.data_preprocessor.pad_size_divisor = 32
    inputs, samples = preprocessed(detector, data_batch(cfg, 2, split), training=split == "train_dataloader")
    assert inputs.shape[-2:] == (96, 128) and samples[0].metainfo["img_shape"] == (90, 100)
    return detector, inputs, samples


def _assert_only_real_area_moved(adv, clean, what):
    moved = (adv - clean).abs()
    assert moved[..., 90:, :].max() == 0 and moved[..., :, 100:].max() == 0, f"{what} perturbed the padding"
    assert moved[..., :90, :100].max() > 0.5, f"{what} did not move"


def test_mtd_and_attacks_never_perturb_the_batch_padding(tiny_config, monkeypatch):
    import nat_tasks.det.detectors as detectors
    from nat_tasks.det.attacks import ATTACKS, AttackConfig, run_attack
    from nat_tasks.det.head_adapters import head_adapter
    from nat_tasks.det.mtd import MTDConfig
    from nat_tasks.det.pixel_space import PixelSpace

    detector, inputs, samples = _padded(tiny_config, "train_dataloader")
    detector.mtd = MTDConfig(eps=EPS, alpha=EPS, steps=1)
    crafted = []
    real_craft = detectors.craft_mtd

    def recording_craft(*args, **kwargs):
        crafted.append(real_craft(*args, **kwargs))
        return crafted[-1]

    monkeypatch.setattr(detectors, "craft_mtd", recording_craft)
    detector.train()
    detector(inputs, samples, mode="loss")
    space = PixelSpace(detector.data_preprocessor)
    _assert_only_real_area_moved(crafted[0][0], space.to_pixels(inputs), "mtd")

    detector, inputs, samples = _padded(tiny_config, "test_dataloader")
    detector.eval()
    config = AttackConfig(eps=EPS, alpha=2, steps=2, dag_steps=3, dag_gamma=2.0)
    for name in ATTACKS:
        adv = run_attack(name, detector, head_adapter(detector.bbox_head), space, inputs, samples, config)
        _assert_only_real_area_moved(space.to_pixels(adv), space.to_pixels(inputs), name)


def test_rap_objective_on_known_numbers():
    from nat_tasks.det.rap import rap_objective

    # Image 0: two proposals with p(no object) 1/2 and 1/4, offsets 0.1 and 0.3 from the clean ones;
    # a third anchor is not a proposal. Image 1: no proposal (constant loss).
    log_no_object = torch.log(torch.tensor([[0.5, 0.25, 0.01], [0.5, 0.5, 0.5]]))
    clean = torch.zeros(2, 3, 4)
    deltas = torch.stack([torch.tensor([[0.1] * 4, [-0.3] * 4, [5.0] * 4]), torch.ones(3, 4)])
    proposals = torch.tensor([[True, True, False], [False, False, False]])
    loss = rap_objective(log_no_object, deltas, clean, proposals)
    label = (math.log(2) + math.log(4)) / 2                    # mean -log(1 - s)
    shape = math.exp(-(4 * 0.10001 + 4 * 0.29999) / 8)         # exp(-mean |d - d_clean + 1e-5|)
    torch.testing.assert_close(loss, torch.tensor([0.5 * label + 0.5 * shape, 0.5 * 0.0 + 0.5 * 1.0]))


def test_dag_targets_every_anchor_that_would_be_a_true_positive(tiny_config):
    from mmdet.structures.bbox import bbox_overlaps, get_box_tensor

    from nat_tasks.det.dag import surviving_targets
    from nat_tasks.det.head_adapters import head_adapter
    from nat_tasks.det.mtd import TaskLosses
    from nat_tasks.det.pixel_space import PixelSpace

    detector, cfg = build_detector(tiny_config)
    inputs, samples = preprocessed(detector, data_batch(cfg, 1))
    adapter = head_adapter(detector.bbox_head)
    losses = TaskLosses(detector, adapter, PixelSpace(detector.data_preprocessor), samples)
    logits, deltas = losses.outputs(PixelSpace(detector.data_preprocessor).to_pixels(inputs))
    gt = samples[0].gt_instances
    # Predict exactly each anchor's own box (zero deltas) and class 0 everywhere at score ~0.5.
    deltas = torch.zeros_like(deltas)
    logits = torch.full_like(logits, -10.0)
    logits[..., 0] = 0.0
    logits[..., adapter.num_classes] = 0.0
    active, labels = surviving_targets(losses, logits, deltas, score_thr=0.3)
    iou = bbox_overlaps(losses.targets.anchors[0], get_box_tensor(gt.bboxes))
    best = iou.max(dim=1)
    expected = (best.values >= 0.5) & (gt.labels[best.indices] == 0)
    assert expected.any()
    assert torch.equal(active[0], expected)
    # Below the score threshold nothing survives as a detection.
    assert not surviving_targets(losses, logits, deltas, score_thr=0.6)[0].any()


def test_attack_specs_and_eps_scaling():
    from nat_tasks.det.attacks import AttackConfig
    from nat_tasks.det.test_loop import parse_attack

    assert parse_attack("cls") == ("cls", None) and parse_attack("cls@16") == ("cls", 16.0)
    for bad in ("pgd", "none@4", "cls@x"):
        with pytest.raises(NatError):
            parse_attack(bad)
    scaled = AttackConfig(eps=8, alpha=2, steps=10).at_eps(32)
    assert (scaled.eps, scaled.alpha, scaled.steps) == (32.0, 8.0, 10)


def test_checklist_on_known_numbers():
    from nat_tasks.det.checklist import checklist_attacks, run_checks

    assert checklist_attacks(8.0) == ["cls@4", "cls", "cls@16", "cls@32", "cls@255"]
    good = run_checks({"cls@4": 40.0, "cls": 30.0, "cls@16": 10.0, "cls@32": 2.0, "cls@255": 0.0}, 8.0)
    assert [check.passed for check in good] == [True, True]
    bad = run_checks({"cls@4": 40.0, "cls": 30.0, "cls@16": 35.0, "cls@32": 2.0, "cls@255": 9.1}, 8.0)
    assert [check.passed for check in bad] == [False, False]


def test_map_interval_is_the_bootstrap_over_images_of_the_metric():
    from nat_tasks.core.stats import bootstrap_interval
    from nat_tasks.det.map_interval import map_interval

    # A metric whose "mAP" is the mean of per-image values: the interval must be the plain
    # bootstrap of that mean (same resamples for the same seed), in %.
    metric = SimpleNamespace(compute_metrics=lambda results: {"mAP": float(np.mean(results))})
    values = list(np.random.default_rng(0).uniform(0, 1, 30))
    low, high = map_interval(metric, values, n_resamples=300, seed=3)
    ref_low, ref_high = bootstrap_interval(np.asarray(values), n_resamples=300, seed=3)
    assert low < 100 * np.mean(values) < high
    np.testing.assert_allclose([low, high], [100 * ref_low, 100 * ref_high], rtol=1e-9)
