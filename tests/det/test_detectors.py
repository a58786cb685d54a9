"""NatSingleStageDetector: MTD and the nasty term inside loss(), one NAT vocabulary, any head."""
import math
from types import SimpleNamespace

import pytest
import torch

from nat_tasks.core.errors import NatError
from nat_tasks.core.nasty import NastyLoss

from .conftest import build_detector
from .helpers import (EPS, assert_only_real_area_moved, build_retina, data_batch, padded, preprocessed,
                      retina_config)


def _batchnorm_counts(detector):
    return {name: int(m.num_batches_tracked) for name, m in detector.named_modules()
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)}


def test_mtd_training_loss_runs_and_logs_mmdet_losses(tiny_config):
    detector, cfg = build_detector(tiny_config, mtd=dict(eps=EPS, alpha=EPS, steps=1))
    batch = data_batch(cfg, 2)
    detector.train()
    losses = detector(*preprocessed(detector, batch), mode="loss")
    assert set(losses) == {"loss_cls", "loss_bbox"}
    assert all(torch.isfinite(sum(v)) for v in losses.values())


def test_mtd_crafts_in_eval_mode_and_leaves_batchnorm_statistics_alone(tiny_config):
    detector, cfg = build_detector(tiny_config, mtd=dict(eps=EPS, alpha=4, steps=2))
    inputs, samples = preprocessed(detector, data_batch(cfg, 2))
    detector.train()
    before = _batchnorm_counts(detector)
    assert before
    detector(inputs, samples, mode="loss")
    # Exactly one train-mode pass (the training forward) updated the statistics; the target
    # assignment's probe, the two candidates' 2 steps each and their selection did not.
    assert _batchnorm_counts(detector) == {name: count + 1 for name, count in before.items()}
    assert detector.training and all(m.training for m in detector.modules())


def test_mtd_never_perturbs_the_batch_padding(tiny_config, monkeypatch):
    import nat_tasks.det.detectors as detectors
    from nat_tasks.det.mtd import MTDConfig
    from nat_tasks.det.pixel_space import PixelSpace

    detector, inputs, samples = padded(tiny_config, "train_dataloader")
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
    assert_only_real_area_moved(crafted[0][0], space.to_pixels(inputs), "mtd")


def test_nasty_term_is_a_sum_over_the_chosen_anchors_per_positive():
    from nat_tasks.det.detectors import NatSingleStageDetector
    from nat_tasks.det.losses import NastyKLDivLoss

    # 2 images x 3 anchors x (2 classes + background). Target uniform, adversary (0, ln 2, 0):
    # KL(p_t || p_a) = 1/3 (ln(4/3) + ln(2/3) + ln(4/3)) = ln(32/27) / 3 per anchor.
    logits = torch.zeros(2, 3, 3, requires_grad=True)
    adversary = torch.zeros(2, 3, 3)
    adversary[..., 1] = math.log(2.0)
    chosen = torch.tensor([[True, True, False], [False, True, False]])
    model = SimpleNamespace(loss_nasty=NastyKLDivLoss(1.0, 1.0, scale_by_tau2=False),
                            nasty_anchors="sampled", adversary=lambda pixels: adversary)
    adapter = SimpleNamespace(flat_logits=lambda scores: logits, nasty_mask=lambda l, t, a: chosen)
    targets = SimpleNamespace(avg_factor=2.0)
    term = NatSingleStageDetector._nasty_term(model, adapter, targets, None, torch.zeros(2, 3, 4, 4))
    # 3 chosen anchors, 2 positives: -3 KL / 2 (a mean over the chosen anchors would be -KL).
    torch.testing.assert_close(term, torch.tensor(-3 * math.log(32 / 27) / 3 / 2))


def _hard_mined_mask(logits, targets, num_classes, neg_pos_ratio=3):
    """Independent oracle: positives + the top neg_pos_ratio*pos negatives by CE, per image."""
    masks = []
    for i in range(logits.shape[0]):
        labels = targets.labels[i]
        pos = labels < num_classes
        neg = labels == num_classes
        ce = torch.nn.functional.cross_entropy(logits[i], labels, reduction="none")
        k = min(int(neg_pos_ratio * pos.sum()), int(neg.sum()))
        neg_idx = torch.nonzero(neg).flatten()[ce[neg].topk(k).indices]
        mask = pos.clone()
        mask[neg_idx] = True
        masks.append(mask)
    return torch.stack(masks)


@pytest.mark.parametrize("anchors", ["sampled", "all"])
def test_nasty_term_equals_nastyloss_on_the_chosen_anchors(trained_tiny, anchors):
    from mmengine.runner import load_checkpoint

    from nat_tasks.det.head_adapters import head_adapter
    from nat_tasks.det.losses import NastyKLDivLoss
    from nat_tasks.det.pixel_space import PixelSpace
    from nat_tasks.det.task_losses import TaskLosses

    config, _, checkpoint = trained_tiny
    nasty = dict(weight=0.5, tau=2.0, anchors=anchors, adversary=dict(config=config, checkpoint=checkpoint))
    detector, cfg = build_detector(config, nasty=nasty)
    # The term is the registered loss, built from the vocabulary (loss_weight=weight, T=tau).
    assert isinstance(detector.loss_nasty, NastyKLDivLoss)
    assert (detector.loss_nasty.loss_weight, detector.loss_nasty.T, detector.loss_nasty.kind) == (0.5, 2.0, "softmax")
    inputs, samples = preprocessed(detector, data_batch(cfg, 3))
    adapter, space = head_adapter(detector.bbox_head), PixelSpace(detector.data_preprocessor)
    cls_scores, _ = adapter.forward(detector, inputs)
    targets = TaskLosses(detector, adapter, space, samples, cls_scores=cls_scores).targets
    term = detector._nasty_term(adapter, targets, cls_scores, space.to_pixels(inputs))

    logits = adapter.flat_logits(cls_scores)
    mask = (_hard_mined_mask(logits, targets, 3) if anchors == "sampled"
            else torch.ones_like(targets.labels, dtype=torch.bool))  # allowed_border=-1: all inside
    adversary, _ = build_detector(config)
    load_checkpoint(adversary, checkpoint, map_location="cpu")
    adversary.eval()
    with torch.no_grad():
        adversary_logits = adapter.flat_logits(adversary.bbox_head(adversary.extract_feat(inputs))[0])
    # Normalised like SSD's classification loss: sum over the chosen anchors / number of positives.
    num_positives = int((targets.labels < 3).sum())
    assert targets.avg_factor == num_positives
    expected = NastyLoss(0.5, 2.0, reduction="sum")(logits[mask], adversary_logits[mask]) / num_positives
    torch.testing.assert_close(term, expected, rtol=1e-4, atol=1e-6)
    assert term.requires_grad


def test_nasty_training_loss_logs_loss_nasty_without_mtd(trained_tiny):
    config, _, checkpoint = trained_tiny
    detector, cfg = build_detector(config, nasty=dict(weight=0.5, tau=2.0, adversary=dict(
        config=config, checkpoint=checkpoint)))
    detector.train()
    losses = detector(*preprocessed(detector, data_batch(cfg, 2)), mode="loss")
    assert set(losses) == {"loss_cls", "loss_bbox", "loss_nasty"}
    assert torch.isfinite(losses["loss_nasty"]) and losses["loss_nasty"] < 0


def test_retinanet_nasty_term_is_the_bernoulli_kind(tiny_config, tmp_path):
    from mmengine.config import Config

    detector, cfg = build_retina(tiny_config)
    checkpoint = tmp_path / "retina.pth"
    torch.save({"state_dict": detector.state_dict()}, checkpoint)
    config_path = tmp_path / "retina.py"
    Config(cfg.to_dict()).dump(str(config_path))
    # RetinaNet is a plain single-stage detector: the same class, a sigmoid head.
    nat, _ = build_retina(tiny_config, mtd=dict(eps=EPS, alpha=EPS, steps=1), nasty=dict(
        weight=0.1, tau=2.0, adversary=dict(config=str(config_path), checkpoint=str(checkpoint))))
    assert type(nat).__name__ == "NatSingleStageDetector" and retina_config(tiny_config).model.type == type(nat).__name__
    assert nat.loss_nasty.kind == "sigmoid"
    nat.train()
    losses = nat(*preprocessed(nat, data_batch(cfg, 2)), mode="loss")
    assert {"loss_cls", "loss_bbox", "loss_nasty"} <= set(losses)
    assert torch.isfinite(losses["loss_nasty"])


def test_nasty_reduction_is_not_a_config_key(trained_tiny):
    config, _, checkpoint = trained_tiny
    with pytest.raises(NatError, match="reduction is fixed"):
        build_detector(config, nasty=dict(weight=0.1, tau=2.0, reduction="mean",
                                          adversary=dict(config=config, checkpoint=checkpoint)))


@pytest.mark.parametrize("nasty, message", [
    (dict(adversary_precision="bfloat16"),
     "model.nasty.adversary_precision was renamed: use model.nasty.adversary.precision"),
    (dict(anchors="most"), "model.nasty.anchors='most'; expected one of ('sampled', 'all')"),
    (dict(temperature=4), "unknown key model.nasty.temperature; expected one of weight, tau, "
                          "scale_by_tau2, adversary, anchors"),
])
def test_bad_nasty_keys_are_one_line_errors(trained_tiny, nasty, message):
    config, _, checkpoint = trained_tiny
    with pytest.raises(NatError) as err:
        build_detector(config, nasty=dict(weight=0.1, tau=2.0, adversary=dict(config=config, checkpoint=checkpoint),
                                          **nasty))
    assert str(err.value) == message
