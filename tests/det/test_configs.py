"""The shipped configs (configs/det/ and the thin configs/voc_*.py) and what the package registers."""
import pytest

from nat_tasks.core.errors import NatError

from .conftest import REPO, build_detector

VOC = {"configs/voc_vanilla.py": "configs/det/voc_ssd300_vanilla.py",
       "configs/voc_mtd.py": "configs/det/voc_ssd300_mtd.py",
       "configs/voc_mtd_nat.py": "configs/det/voc_ssd300_mtd_nat.py"}


def test_modules_are_registered():
    import nat_tasks.det  # noqa: F401
    from mmdet.registry import LOOPS, MODELS

    for name in ("NatSingleStageDetector", "SSDHeadPredictFix", "NastyKLDivLoss"):
        assert MODELS.get(name) is not None
    assert LOOPS.get("AdversarialTestLoop") is not None


def test_voc_configs_build_and_thin_configs_match_configs_det():
    from mmengine.config import Config

    for thin, real in VOC.items():
        for config in (thin, real):
            cfg = Config.fromfile(f"{REPO}/{config}")
            assert cfg.model.type == "NatSingleStageDetector" and cfg.model.backbone.init_cfg is None
            assert cfg.model.bbox_head.type == "SSDHeadPredictFix" and cfg.model.bbox_head.num_classes == 20
            assert cfg.custom_imports.imports == ["nat_tasks.det"]
            assert cfg.train_dataloader.dataset.dataset.datasets[0].data_root == "data/VOCdevkit/"
            assert cfg.default_hooks.checkpoint.backend_args == dict(backend="atomic_local")
        thin_model, real_model = Config.fromfile(f"{REPO}/{thin}").model, Config.fromfile(f"{REPO}/{real}").model
        if "nasty" in real_model:  # the adversary: what the sibling vanilla config writes
            thin_model.nasty.pop("adversary"), real_model.nasty.pop("adversary")
        assert thin_model.to_dict() == real_model.to_dict(), thin
    # Each MTD+NAT config's adversary is the model its vanilla config trains, where that writes it.
    for config, vanilla in (("configs/voc_mtd_nat.py", "voc_vanilla"),
                            ("configs/det/voc_ssd300_mtd_nat.py", "voc_ssd300_vanilla"),
                            ("configs/det/demo_mtd_nat.py", "demo_vanilla")):
        model = Config.fromfile(f"{REPO}/{config}").model
        assert model.mtd.eps == 8
        assert model.nasty.adversary.config.endswith(f"/{vanilla}.py")
        assert model.nasty.adversary.checkpoint.startswith(f"work_dirs/{vanilla}/epoch_")
        hooks = Config.fromfile(f"{REPO}/{config}").default_hooks  # checkpoints written atomically
        assert hooks.checkpoint.backend_args == dict(backend="atomic_local")
    # The full SSD300 builds offline (no VGG download) and predicts (the SSDHead fix).
    detector, _ = build_detector(f"{REPO}/configs/voc_vanilla.py")
    detector.init_weights()
    assert detector.bbox_head.loss_cls is None


@pytest.mark.parametrize("old, new", [("NatSSD", "NatSingleStageDetector"),
                                      ("NatRetinaNet", "NatSingleStageDetector"),
                                      ("NatSSDHead", "SSDHeadPredictFix")])
def test_renamed_types_are_one_line_errors(old, new):
    import nat_tasks.det  # noqa: F401
    from mmdet.registry import MODELS

    with pytest.raises(NatError) as err:
        MODELS.build(dict(type=old, num_classes=3))
    assert str(err.value) == f"model type {old!r} was renamed: use type={new!r}"
