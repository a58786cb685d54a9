"""tools/train_cls.py on bad input: one clear line on stderr, exit 2, no traceback, nothing lost.
The tool's main runs in this process (``tool_error``): a subprocess per case cost ~5 s each."""
import pytest
import torch

from nat_tasks.cls.models.architectures import build_classifier
from .train_helpers import write_cifar10, write_config


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    data = write_cifar10(str(tmp / "data"))
    config = write_config(tmp / "tiny.py", data_root=data, model=dict(method=dict(steps=1)), train_cfg=dict(max_epochs=1))
    torch.save(build_classifier("small_cnn", 100).state_dict(), tmp / "cifar100_adversary.pth")
    return tmp, data, config


def the_error(stderr, *fragments):
    """The one ``error:`` line of a bad-input run (and no traceback), holding every fragment."""
    assert "Traceback" not in stderr, stderr[-3000:]
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, stderr[-3000:]
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


def nat_options(checkpoint):
    return ["model.method.type=nat", "model.nasty.adversary.arch=small_cnn",
            f"model.nasty.adversary.checkpoint={checkpoint}",
            "model.nasty.adversary.trained_by=configs/cls/cifar10_preact18_vanilla.py"]


def test_missing_data_root_names_the_expected_layout(setup, tmp_path, tool_error):
    _, _, config = setup
    err = tool_error("train_cls", config, "--work-dir", tmp_path / "w", "--data-root", tmp_path / "nowhere")
    the_error(err, "CIFAR10 data_root", "does not exist", "cifar-10-batches-py")


@pytest.mark.parametrize("options,fragment", [
    (["model.arch=resnet999"], "unknown classifier 'resnet999'"),
    (["model.method.type=no_such_method"], "unknown method 'no_such_method'"),
    (["model.method.eps=1.5"], "eps=1.5 is outside [0,"),
])
def test_bad_config_values(setup, tmp_path, options, fragment, tool_error):
    _, _, config = setup
    err = tool_error("train_cls", config, "--work-dir", tmp_path / "w", "--cfg-options", *options)
    the_error(err, fragment)


def test_unknown_adversary_precision(setup, tmp_path, tool_error):
    _, _, config = setup
    err = tool_error("train_cls", config, "--work-dir", tmp_path / "w", "--cfg-options",
                    *nat_options(tmp_path / "any.pth"), "model.nasty.adversary.precision=fp8")
    the_error(err, "adversary precision 'fp8'")


def test_missing_adversary_checkpoint_says_which_config_trains_it(setup, tmp_path, tool_error):
    _, _, config = setup
    err = tool_error("train_cls", config, "--work-dir", tmp_path / "w",
                    "--cfg-options", *nat_options(tmp_path / "missing.pth"))
    the_error(err, f"adversary checkpoint not found: {tmp_path / 'missing.pth'}; train it first: "
                          "`python tools/train_cls.py configs/cls/cifar10_preact18_vanilla.py`")


def test_incompatible_adversary_and_nothing_on_disk_is_lost(setup, tmp_path, tool_error):
    tmp, _, config = setup
    work_dir = tmp_path / "w"
    work_dir.mkdir()
    (work_dir / "epoch_1.pth").write_bytes(b"an earlier checkpoint")
    (work_dir / "results.json").write_text('{"keep": true}')
    err = tool_error("train_cls", config, "--work-dir", work_dir,
                    "--cfg-options", *nat_options(tmp / "cifar100_adversary.pth"))
    the_error(err, "adversary checkpoint (small_cnn, 10 classes)", "shape mismatch")
    assert (work_dir / "epoch_1.pth").read_bytes() == b"an earlier checkpoint"
    assert (work_dir / "results.json").read_text() == '{"keep": true}'


def test_diverging_loss_stops_with_one_line(setup, tmp_path, tool_error):
    _, _, config = setup
    err = tool_error("train_cls", config, "--work-dir", tmp_path / "w",
                    "--cfg-options", "optim_wrapper.optimizer.lr=1e30", "optim_wrapper.optimizer.momentum=0")
    the_error(err, "training loss became", "diverged")


@pytest.mark.parametrize("options,fragment", [
    (["model.adversary.arch=small_cnn"], "model.adversary was moved: use model.nasty.adversary"),
    (["model.adversary_precision=bfloat16"], "model.adversary_precision was moved: use model.nasty.adversary.precision"),
    (["model.method.w=0.06"], "model.method.w was moved: use model.nasty.weight"),
    (["model.nasty.w=0.06"], "model.nasty.w was renamed: use model.nasty.weight"),
])
def test_old_nat_keys_name_the_new_ones(setup, tmp_path, options, fragment, tool_error):
    _, _, config = setup
    err = tool_error("train_cls", config, "--work-dir", tmp_path / "w", "--cfg-options",
                    *nat_options(tmp_path / "any.pth"), *options)
    the_error(err, fragment)


def test_missing_config(tmp_path, tool_error):
    the_error(tool_error("train_cls", tmp_path / "nope.py"), "config file not found")
