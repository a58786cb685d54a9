"""The TOG attacks: their objectives are the authors' (per-anchor CE to background, CE + box loss
to the clean detections), and each does what its name says to a trained undefended detector."""
import pytest
import torch
import torch.nn.functional as F

from .conftest import build_detector
from .helpers import EPS, data_batch, preprocessed, task_losses_of

N_IMAGES = 8


def _detections(detector, inputs, samples, confidence=0.5):
    with torch.no_grad():
        results = detector.bbox_head.predict(detector.extract_feat(inputs), samples, rescale=False)
    return [r[r.scores >= confidence] for r in results]


def _trained(trained_tiny, n=N_IMAGES):
    from mmengine.runner import load_checkpoint

    config, _, checkpoint = trained_tiny
    detector, cfg = build_detector(config)
    load_checkpoint(detector, checkpoint, map_location="cpu", logger="silent")
    detector.eval()
    inputs, samples = preprocessed(detector, data_batch(cfg, n, "test_dataloader"), training=False)
    return detector, inputs, samples


def test_vanishing_loss_is_the_authors_mean_ce_to_background(tiny_config):
    from nat_tasks.det.pixel_space import PixelSpace
    from nat_tasks.det.tog import vanishing_loss

    detector, cfg = build_detector(tiny_config)
    detector.eval()
    inputs, samples = preprocessed(detector, data_batch(cfg, 2, "test_dataloader"), training=False)
    losses = task_losses_of(detector, inputs, samples)
    pixels = PixelSpace(detector.data_preprocessor).to_pixels(inputs)
    logits, _ = losses.outputs(pixels)
    # models/ssd.py of the TOG code: softmax CE to the one-hot background target, mean over anchors.
    expected = -F.log_softmax(logits, dim=-1)[..., -1].mean(dim=1)
    torch.testing.assert_close(vanishing_loss(losses, sign=1.0)(pixels), expected)
    torch.testing.assert_close(vanishing_loss(losses)(pixels), -expected)


def test_sigmoid_heads_take_background_as_every_class_score_zero(tiny_config):
    from nat_tasks.det.head_adapters import head_adapter

    from .helpers import build_retina

    detector, _ = build_retina(tiny_config)
    adapter = head_adapter(detector.bbox_head)
    logits = torch.randn(2, 5, 3)
    labels = torch.tensor([[0, 1, 2, 3, 3], [3, 3, 2, 0, 1]])
    expected = F.binary_cross_entropy_with_logits(
        logits, F.one_hot(labels, 4)[..., :3].float(), reduction="none").sum(-1)
    torch.testing.assert_close(adapter.anchor_ce(logits, labels), expected)
    assert torch.all(adapter.anchor_ce(logits, torch.full((2, 5), 3)) > 0)


def test_each_tog_attack_does_what_its_name_says_on_a_trained_detector(trained_tiny):
    from nat_tasks.det.attacks import ATTACKS, AttackConfig
    from nat_tasks.det.tog import clean_detections, detection_loss, most_likely_wrong

    detector, inputs, samples = _trained(trained_tiny)
    config = AttackConfig(eps=EPS, alpha=2, steps=10)
    clean = _detections(detector, inputs, samples)
    n_clean = sum(len(d) for d in clean)
    assert n_clean >= N_IMAGES, "the tiny detector detects too little to test against"
    adv = {kind: _detections(detector, ATTACKS.build(f"tog-{kind}", config=config)(detector, inputs, samples), samples)
           for kind in ("vanishing", "fabrication", "untargeted")}
    count = {kind: sum(len(d) for d in dets) for kind, dets in adv.items()}
    # Vanishing removes most detections (the authors' check of the attack); fabrication adds some;
    # untargeted removes some.
    assert count["vanishing"] < 0.3 * n_clean, (count, n_clean)
    assert count["fabrication"] > n_clean, (count, n_clean)
    assert count["untargeted"] < n_clean, (count, n_clean)
    # Mislabeling lowers its objective (CE + box loss to the most likely wrong class on the anchors
    # matched to the clean detections) on every image with a detection, and raises the wrong class's
    # probability there (the other anchors may keep reporting the object, see tog.py).
    losses = task_losses_of(detector, inputs, samples)
    pixels = losses.pixel_space.to_pixels(inputs)
    targets = losses.assign(clean_detections(losses))
    positive = targets.positives(3) & (targets.label_weights > 0)
    objective = detection_loss(losses, mislabel=True)  # ascended: minus the loss
    attacked = losses.pixel_space.to_pixels(ATTACKS.build("tog-mislabeling", config=config)(detector, inputs, samples))
    with torch.no_grad():
        wrong = most_likely_wrong(losses.adapter, losses.outputs(pixels)[0], targets.labels)
        before, after = objective(pixels), objective(attacked)
        p_wrong = [losses.outputs(x)[0].softmax(-1).gather(-1, wrong[..., None])[..., 0][positive].mean()
                   for x in (pixels, attacked)]
    has = positive.any(dim=1)
    assert has.sum() >= N_IMAGES // 2 and torch.all(after[has] > before[has]), (before, after)
    assert p_wrong[1] > 2 * p_wrong[0], p_wrong


def _reference_detection_attack(detector, inputs, samples, config, mislabel):
    """TOG-untargeted / -mislabeling written out plainly, as first implemented: a one-image probe
    for the anchors, a separate clean forward pass for the detections (and another for the wrong
    labels), the CE of every anchor masked to the matched ones, the engine's PGD."""
    import copy

    from mmdet.models.losses import smooth_l1_loss

    from nat_tasks.core.attacks import projected_gradient_ascent
    from nat_tasks.det.head_adapters import head_adapter
    from nat_tasks.det.pixel_space import PIXEL_BOUNDS, PixelSpace
    from nat_tasks.det.random_draws import ImageDraws
    from nat_tasks.det.real_area import real_area_mask

    head, adapter, space = detector.bbox_head, head_adapter(detector.bbox_head), PixelSpace(detector.data_preprocessor)
    pixels = space.to_pixels(inputs)

    def forward(x):
        return head(detector.extract_feat(space.to_inputs(x)))

    cfg = copy.deepcopy(head.test_cfg)
    cfg.score_thr = 0.5
    with torch.no_grad():
        probe = head(detector.extract_feat(space.to_inputs(pixels)[:1]))[0]
        detections = head.predict_by_feat(*forward(pixels), batch_img_metas=[s.metainfo for s in samples], cfg=cfg,
                                          rescale=False)
        targets = adapter.targets(probe, samples, detections)
        positive = targets.positives(3) & (targets.label_weights > 0)
        labels = targets.labels
        if mislabel:
            scores = adapter.flat_logits(forward(pixels)[0]).softmax(-1)[..., :3]
            scores.scatter_(-1, labels.clamp(max=2)[..., None], float("-inf"))
            labels = torch.where(positive, scores.argmax(-1), labels)

    def loss(adv):
        cls_scores, bbox_preds = forward(adv)
        logits, deltas = adapter.flat_logits(cls_scores), adapter.flat_deltas(bbox_preds)
        ce = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), reduction="none").view_as(labels)
        box = smooth_l1_loss(deltas, targets.bbox_targets, targets.bbox_weights,
                             beta=head.train_cfg["smoothl1_beta"], reduction="none").flatten(1).sum(1)
        return (-1.0 if mislabel else 1.0) * ((ce * positive).sum(1) / targets.avg_factor + box / targets.avg_factor)

    adv = projected_gradient_ascent(loss, pixels, eps=config.eps, alpha=config.alpha, steps=config.steps,
                                    random_start=ImageDraws(config.seed, range(len(inputs))).uniform(config.eps),
                                    bounds=PIXEL_BOUNDS, mask=real_area_mask(samples, pixels))
    return space.to_inputs(adv), positive


@pytest.mark.parametrize("kind", ["untargeted", "mislabeling"])
def test_tog_perturbation_is_the_plain_reference_bit_for_bit(trained_tiny, kind):
    from nat_tasks.det.attacks import ATTACKS, AttackConfig

    detector, inputs, samples = _trained(trained_tiny, n=4)
    config = AttackConfig(eps=EPS, alpha=2, steps=3, seed=5)
    expected, positive = _reference_detection_attack(detector, inputs, samples, config, kind == "mislabeling")
    assert positive.any(dim=1).sum() >= 2, "too few detections to test against"
    adv = ATTACKS.build(f"tog-{kind}", config=config)(detector, inputs, samples)
    assert not torch.equal(adv, inputs)
    assert torch.equal(adv, expected)
