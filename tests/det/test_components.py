"""Registration, pixel space, per-image losses, MTD selection and budgets, the nasty term."""
import copy

import pytest
import torch

from nat_tasks.core.errors import NatError
from nat_tasks.core.nasty import NastyLoss

from .conftest import REPO, build_detector
from .helpers import data_batch, preprocessed

EPS = 8.0

RETINA = dict(
    type="NatRetinaNet",
    neck=dict(_delete_=True, type="FPN", in_channels=[32, 64, 128], out_channels=32, num_outs=3),
    bbox_head=dict(
        _delete_=True,
        type="RetinaHead", num_classes=3, in_channels=32, stacked_convs=1, feat_channels=32,
        anchor_generator=dict(type="AnchorGenerator", octave_base_scale=4, scales_per_octave=1,
                              ratios=[0.5, 1.0, 2.0], strides=[8, 16, 32]),
        bbox_coder=dict(type="DeltaXYWHBBoxCoder", target_means=[0.0] * 4, target_stds=[1.0] * 4),
        loss_cls=dict(type="FocalLoss", use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0),
        loss_bbox=dict(type="L1Loss", loss_weight=1.0)),
    train_cfg=dict(
        _delete_=True,
        assigner=dict(type="MaxIoUAssigner", pos_iou_thr=0.5, neg_iou_thr=0.4, min_pos_iou=0,
                      ignore_iof_thr=-1),
        sampler=dict(type="PseudoSampler"), allowed_border=-1, pos_weight=-1, debug=False),
    test_cfg=dict(nms_pre=400, min_bbox_size=0, score_thr=0.05, nms=dict(type="nms", iou_threshold=0.5),
                  max_per_img=100))


def _retina(tiny_config):
    from mmengine.config import Config
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules

    register_all_modules()
    cfg = Config.fromfile(tiny_config)
    cfg.merge_from_dict({"model": copy.deepcopy(RETINA)})  # merging pops the _delete_ keys
    return MODELS.build(cfg.model), cfg


def test_configs_build_and_modules_are_registered():
    import nat_tasks.det  # noqa: F401
    from mmengine.config import Config
    from mmdet.registry import LOOPS, MODELS

    for name in ("NatSSD", "NatRetinaNet", "NatSSDHead"):
        assert MODELS.get(name) is not None
    assert LOOPS.get("AdversarialTestLoop") is not None
    for config in ("voc_vanilla", "voc_mtd", "voc_mtd_nat"):
        cfg = Config.fromfile(f"{REPO}/configs/{config}.py")
        assert cfg.model.type == "NatSSD" and cfg.model.backbone.init_cfg is None
        assert cfg.model.bbox_head.type == "NatSSDHead" and cfg.model.bbox_head.num_classes == 20
        assert cfg.custom_imports.imports == ["nat_tasks.det"]
        assert cfg.train_dataloader.dataset.dataset.datasets[0].data_root == "data/VOCdevkit/"
    mtd_nat = Config.fromfile(f"{REPO}/configs/voc_mtd_nat.py").model
    assert mtd_nat.mtd.eps == 8 and mtd_nat.nasty.adversary.config.endswith("configs/voc_vanilla.py")
    # The full SSD300 builds offline (no VGG download) and predicts (the SSDHead fix).
    detector, _ = build_detector(f"{REPO}/configs/voc_vanilla.py")
    detector.init_weights()
    assert detector.bbox_head.loss_cls is None


def test_pixel_space_round_trip(tiny_config):
    from nat_tasks.det.pixel_space import PixelSpace

    detector, cfg = build_detector(tiny_config)
    batch = data_batch(cfg, 2)
    inputs, _ = preprocessed(detector, batch)
    space = PixelSpace(detector.data_preprocessor)
    raw_bgr = torch.stack(batch["inputs"]).float()
    # mmdet loads BGR; the model sees RGB: pixel space is the RGB image on 0..255.
    torch.testing.assert_close(space.to_pixels(inputs), raw_bgr[:, [2, 1, 0]], atol=1e-3, rtol=0)
    torch.testing.assert_close(space.to_inputs(space.to_pixels(inputs)), inputs, atol=1e-5, rtol=0)


@pytest.mark.parametrize("head", ["ssd", "retina"])
def test_per_image_losses_sum_to_the_heads_batch_losses(tiny_config, head):
    from nat_tasks.det.head_adapters import head_adapter

    detector, cfg = build_detector(tiny_config) if head == "ssd" else _retina(tiny_config)
    inputs, samples = preprocessed(detector, data_batch(cfg, 4))
    adapter = head_adapter(detector.bbox_head)
    assert adapter.kind == ("softmax" if head == "ssd" else "sigmoid")
    cls_scores, bbox_preds = adapter.forward(detector, inputs)
    targets = adapter.targets(cls_scores, samples)
    cls, loc = adapter.per_image_losses(adapter.flat_logits(cls_scores), adapter.flat_deltas(bbox_preds), targets)
    assert cls.shape == loc.shape == (4,)
    reference = detector.bbox_head.loss(detector.extract_feat(inputs), samples)
    torch.testing.assert_close(cls.sum(), sum(x.sum() for x in reference["loss_cls"]), rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(loc.sum(), sum(x.sum() for x in reference["loss_bbox"]), rtol=1e-4, atol=1e-6)


class _ConstructedLosses:
    """Per-image losses of known form: cls = a_i * mean(R channel), loc = b_i * mean(G channel)."""

    def __init__(self, a, b):
        self.a, self.b = torch.tensor(a), torch.tensor(b)

    def __call__(self, pixels):
        return self.a * pixels[:, 0].mean((1, 2)), self.b * pixels[:, 1].mean((1, 2))

    def task(self, name):
        return lambda pixels: self(pixels)[0 if name == "cls" else 1]


def test_mtd_keeps_per_image_the_candidate_with_larger_total_loss():
    from nat_tasks.det.mtd import MTDConfig, craft_mtd, select_per_image

    # Image 0 is hurt most through cls (a >> b), image 1 through loc (b >> a).
    losses = _ConstructedLosses([10.0, 0.1], [0.1, 10.0])
    pixels = torch.full((2, 3, 4, 4), 100.0)
    adv, choice = craft_mtd(losses, pixels, MTDConfig(eps=EPS, alpha=EPS, steps=2, random_start=False))
    assert choice.tolist() == [0, 1]
    # cls candidate raises R by eps and leaves G; the loc candidate raises G.
    torch.testing.assert_close(adv[0, 0], torch.full((4, 4), 108.0))
    torch.testing.assert_close(adv[0, 1], torch.full((4, 4), 100.0))
    torch.testing.assert_close(adv[1, 1], torch.full((4, 4), 108.0))
    torch.testing.assert_close(adv[1, 0], torch.full((4, 4), 100.0))
    chosen, index = select_per_image(torch.arange(6.0).view(2, 3), torch.tensor([[1.0, 5, 0], [2, 0, 3]]))
    assert chosen.tolist() == [3.0, 1.0, 5.0] and index.tolist() == [1, 0, 1]


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_mtd_and_attacks_stay_inside_eps_and_pixel_range(tiny_config, mode):
    from nat_tasks.det.attacks import ATTACKS, AttackConfig, run_attack
    from nat_tasks.det.head_adapters import head_adapter
    from nat_tasks.det.mtd import MTDConfig, TaskLosses, craft_mtd
    from nat_tasks.det.pixel_space import PixelSpace

    detector, cfg = build_detector(tiny_config)
    split = "train_dataloader" if mode == "train" else "test_dataloader"
    inputs, samples = preprocessed(detector, data_batch(cfg, 2, split), training=mode == "train")
    detector.train(mode == "train")
    space, adapter = PixelSpace(detector.data_preprocessor), head_adapter(detector.bbox_head)
    pixels = space.to_pixels(inputs)
    if mode == "train":
        candidates = {"mtd": space.to_inputs(craft_mtd(
            TaskLosses(detector, adapter, space, samples), pixels, MTDConfig(eps=EPS, alpha=3, steps=3))[0])}
    else:
        config = AttackConfig(eps=EPS, alpha=2, steps=3, dag_steps=5)
        candidates = {name: run_attack(name, detector, adapter, space, inputs, samples, config)
                      for name in ATTACKS}
    for name, adv_inputs in candidates.items():
        adv = space.to_pixels(adv_inputs)
        assert (adv - pixels).abs().max() <= EPS + 1e-3, name
        assert adv.min() >= -1e-3 and adv.max() <= 255 + 1e-3, name
        if name != "dag":  # DAG stops at once when no target is classified correctly
            assert (adv - pixels).abs().max() > 0.5, f"{name} did not move"
    for p in detector.parameters():
        assert p.grad is None  # attacks never touch parameter gradients


def test_mtd_training_loss_runs_and_logs_mmdet_losses(tiny_config):
    detector, cfg = build_detector(tiny_config, mtd=dict(eps=EPS, alpha=EPS, steps=1))
    batch = data_batch(cfg, 2)
    detector.train()
    losses = detector(*preprocessed(detector, batch), mode="loss")
    assert set(losses) == {"loss_cls", "loss_bbox"}
    assert all(torch.isfinite(sum(v)) for v in losses.values())


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
    from nat_tasks.det.mtd import TaskLosses
    from nat_tasks.det.pixel_space import PixelSpace

    config, _, checkpoint = trained_tiny
    nasty = dict(weight=0.5, tau=2.0, anchors=anchors, adversary=dict(config=config, checkpoint=checkpoint))
    detector, cfg = build_detector(config, nasty=nasty)
    inputs, samples = preprocessed(detector, data_batch(cfg, 3))
    adapter, space = head_adapter(detector.bbox_head), PixelSpace(detector.data_preprocessor)
    cls_scores, _ = adapter.forward(detector, inputs)
    task_losses = TaskLosses(detector, adapter, space, samples)
    term = detector._nasty_term(adapter, task_losses, cls_scores, space.to_pixels(inputs))

    logits = adapter.flat_logits(cls_scores)
    targets = task_losses.targets
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
    nasty = dict(weight=0.5, tau=2.0, adversary_precision="bfloat16",
                 adversary=dict(config=config, checkpoint=checkpoint))
    detector, cfg = build_detector(config, nasty=nasty)
    exact, _ = build_detector(config, nasty={**nasty, "adversary_precision": None})
    assert detector.adversary.precision == "bfloat16" and exact.adversary.precision is None
    from nat_tasks.det.pixel_space import PixelSpace

    inputs, _ = preprocessed(detector, data_batch(cfg, 2))
    pixels = PixelSpace(detector.data_preprocessor).to_pixels(inputs)
    reduced, full = detector.adversary(pixels), exact.adversary(pixels)
    assert reduced.dtype == torch.float32 and not torch.equal(reduced, full)
    torch.testing.assert_close(reduced, full, atol=0.05 * max(1.0, full.abs().max().item()), rtol=0)


def test_retinanet_nasty_term_is_the_bernoulli_kind(tiny_config, tmp_path):
    from mmengine.config import Config

    detector, cfg = _retina(tiny_config)
    checkpoint = tmp_path / "retina.pth"
    torch.save({"state_dict": detector.state_dict()}, checkpoint)
    config_path = tmp_path / "retina.py"
    Config(cfg.to_dict()).dump(str(config_path))
    nat, _ = _retina(tiny_config)
    nat._setup_mtd_nat(dict(eps=EPS, alpha=EPS, steps=1),
                       dict(weight=0.1, tau=2.0, adversary=dict(config=str(config_path), checkpoint=str(checkpoint))))
    assert nat.nasty.kind == "sigmoid"
    nat.train()
    losses = nat(*preprocessed(nat, data_batch(cfg, 2)), mode="loss")
    assert {"loss_cls", "loss_bbox", "loss_nasty"} <= set(losses)
    assert torch.isfinite(losses["loss_nasty"])


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
            build_frozen_adversary(dict(config=str(config), checkpoint=str(checkpoint)), target.bbox_head)
    with pytest.raises(NatError, match="train .* first"):
        build_frozen_adversary(dict(config=tiny_config, checkpoint=str(tmp_path / "none.pth")), target.bbox_head)
