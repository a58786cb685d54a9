"""Small helpers shared by the detection tests."""
import copy
import importlib.util
import os

import torch

from .conftest import REPO

EPS = 8.0

# The tiny demo detector with a RetinaNet head (sigmoid focal loss, FPN): a second head family.
RETINA = dict(
    type="NatSingleStageDetector",
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


def retina_config(tiny_config, **model_overrides):
    """The tiny config with the RetinaNet head (an mmengine Config)."""
    from mmengine.config import Config

    cfg = Config.fromfile(tiny_config)
    cfg.merge_from_dict({"model": copy.deepcopy(RETINA)})  # merging pops the _delete_ keys
    cfg.model.update(model_overrides)
    return cfg


def build_retina(tiny_config, **model_overrides):
    """A RetinaNet-headed ``NatSingleStageDetector`` of the tiny config and its config."""
    import nat_tasks.det  # noqa: F401
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules

    register_all_modules()
    cfg = retina_config(tiny_config, **model_overrides)
    return MODELS.build(cfg.model), cfg


def data_batch(cfg, n=4, split="train_dataloader"):
    """The first ``n`` items of a config's dataset, collated like mmengine's dataloader."""
    from mmengine.dataset import pseudo_collate
    from mmdet.registry import DATASETS

    dataset = DATASETS.build(cfg[split].dataset)
    return pseudo_collate([dataset[i] for i in range(n)])


def preprocessed(detector, batch, training=True):
    with torch.no_grad():
        data = detector.data_preprocessor(batch, training)
    return data["inputs"], data["data_samples"]


def task_losses_of(detector, inputs, samples, **kwargs):
    """The ``TaskLosses`` of a preprocessed batch (targets assigned from a probe of its pixels)."""
    from nat_tasks.det.head_adapters import head_adapter
    from nat_tasks.det.pixel_space import PixelSpace
    from nat_tasks.det.task_losses import TaskLosses

    space = PixelSpace(detector.data_preprocessor)
    return TaskLosses(detector, head_adapter(detector.bbox_head), space, samples,
                      pixels=space.to_pixels(inputs), **kwargs)


def padded(tiny_config, split):
    """A batch resized to 100x90 and padded to 128x96 (pad_size_divisor 32)."""
    from .conftest import build_detector

    detector, cfg = build_detector(tiny_config)
    cfg[split].dataset.pipeline[1 if split == "test_dataloader" else 2].scale = (100, 90)
    detector.data_preprocessor.pad_size_divisor = 32
    inputs, samples = preprocessed(detector, data_batch(cfg, 2, split), training=split == "train_dataloader")
    assert inputs.shape[-2:] == (96, 128) and samples[0].metainfo["img_shape"] == (90, 100)
    return detector, inputs, samples


def assert_only_real_area_moved(adv, clean, what):
    moved = (adv - clean).abs()
    assert moved[..., 90:, :].max() == 0 and moved[..., :, 100:].max() == 0, f"{what} perturbed the padding"
    assert moved[..., :90, :100].max() > 0.5, f"{what} did not move"


def nat_config(tmp_path, base, adversary_config, checkpoint, name="nat.py", **nasty):
    """A config file ``_base_ = base`` with ``model.nasty`` against (adversary_config, checkpoint)."""
    nasty = dict(dict(weight=0.1, tau=2.0), **nasty)
    path = tmp_path / name
    path.write_text(f"_base_ = {str(base)!r}\nmodel = dict(nasty=dict(**{nasty!r}, adversary="
                    f"dict(config={str(adversary_config)!r}, checkpoint={str(checkpoint)!r})))\n")
    return str(path)


def load_tool(name):
    """Import tools/<name>.py as a module (its main() is wrapped by tool_main)."""
    spec = importlib.util.spec_from_file_location(f"tool_{name}", os.path.join(REPO, "tools", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
