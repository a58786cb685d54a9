"""The adversary-variant configs (Tables 5, 7 and 8): every NAT adversary member points at the
checkpoint its ``trained_by`` config produces, and that config trains the member's architecture."""
import glob
import os

import pytest
from mmengine.config import Config

import nat_tasks.cls  # noqa: F401  (registers the optimizer wrappers)
from nat_tasks.cls.training.nasty_section import nasty_spec
from nat_tasks.core.adversary import random_init_seed

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIGS = sorted(glob.glob(os.path.join(REPO, "configs", "cls", "*.py")))
NAT_CONFIGS = [p for p in CONFIGS if Config.fromfile(p).model.get("nasty")]
TABLE_ROWS = {  # config -> the adversary architectures (None: random init) it must name
    "cifar10_wrn34_10_nat_adv_densenet121.py": ["densenet121"],
    "cifar10_wrn34_10_nat_adv_resnet18.py": ["resnet18"],
    "cifar10_wrn34_10_nat_adv_resnet50.py": ["resnet50"],
    "cifar10_wrn34_10_nat_adv_vgg11.py": ["vgg11"],
    "cifar10_wrn34_10_nat_adv_ensemble.py": ["resnet18", "densenet121", "vgg11"],
    "cifar10_wrn34_10_nat_adv_random.py": ["wrn34_10"],
    "cifar10_wrn34_10_nat_adv_sam.py": ["wrn34_10"],
    "cifar10_wrn34_10_nat_adv_pgdat.py": ["wrn34_10"],
    "cifar10_wrn34_10_nat_adv_nat.py": ["wrn34_10"],
    "cifar10_mobilenet_v2_nat.py": ["mobilenet_v2"],
}
STATES = {"sam": "SAMOptimWrapper", "pgdat": "pgd_at", "nat": "nat", "vanilla": "vanilla"}


def test_every_table_row_has_its_config():
    names = {os.path.basename(p) for p in NAT_CONFIGS}
    assert set(TABLE_ROWS) <= names


@pytest.mark.parametrize("path", NAT_CONFIGS, ids=os.path.basename)
def test_adversaries_point_at_what_their_trained_by_config_produces(path):
    cfg = Config.fromfile(path)
    spec = nasty_spec(cfg.model)
    expected = TABLE_ROWS.get(os.path.basename(path))
    if expected:
        assert cfg.model.arch == ("mobilenet_v2" if "mobilenet" in path else "wrn34_10")
        assert [m["arch"] for m in spec.members] == expected
    for member in spec.members:
        if random_init_seed(member) is not None:
            assert member["trained_by"] is None
            continue
        trainer = Config.fromfile(os.path.join(REPO, member["trained_by"]))
        name = os.path.splitext(os.path.basename(member["trained_by"]))[0]
        # mmengine's default work_dir is work_dirs/<config name>; the last checkpoint is epoch_<max>
        assert member["checkpoint"] == f"work_dirs/{name}/epoch_{trainer.train_cfg.max_epochs}.pth"
        assert trainer.model.arch == member["arch"]
        assert trainer.model.num_classes == cfg.model.num_classes
        assert trainer.train_dataloader.dataset.type == cfg.train_dataloader.dataset.type


@pytest.mark.parametrize("state, expected", STATES.items())
def test_table8_adversary_states_are_trained_the_way_their_names_say(state, expected):
    cfg = Config.fromfile(os.path.join(REPO, "configs", "cls", f"cifar10_wrn34_10_{state}.py"))
    assert cfg.model.arch == "wrn34_10"
    if state == "sam":
        assert cfg.optim_wrapper.type == "SAMOptimWrapper" and cfg.model.method.type == "vanilla"
        assert cfg.optim_wrapper.optimizer.type == "SGD" and cfg.optim_wrapper.rho == 0.05
    else:
        assert cfg.optim_wrapper.type == "OptimWrapper" and cfg.model.method.type == expected
