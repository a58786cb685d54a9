"""Mixed-precision training (``--amp``, ``nat_tasks/runtime/amp.py``) of the classification trainer.

mmengine's ``train_step`` runs the method (and so its inner attack) inside the optimizer wrapper's
``optim_context``; these tests check what that must give: bfloat16 forward passes in the attack
and in the loss, float32 adversarial examples inside the budget, float32 weights that the
optimizer moves, the nasty term in float32, and the tool's ``--amp`` end to end.
"""
import importlib.util
import os

import pytest
import torch
from mmengine.optim import build_optim_wrapper

import nat_tasks.cls.methods.standard as standard
import nat_tasks.core.attacks as core_attacks
from nat_tasks.cls.training.adversarial_classifier import AdversarialClassifier
from nat_tasks.core import NastyLoss
from nat_tasks.core.errors import NatError
from nat_tasks.runtime.amp import WRAPPER, MixedPrecisionOptimWrapper, amp_dtype

from .train_helpers import REPO, write_cifar10, write_config

EPS = 8 / 255
ATTACK = dict(eps=EPS, alpha=2 / 255, steps=2)
METHODS = {"vanilla": dict(type="vanilla"), "pgd_at": dict(type="pgd_at", **ATTACK),
           "trades": dict(type="trades", **ATTACK), "nat": dict(type="nat", **ATTACK)}


def amp_model(method, small_cnn_file):
    torch.manual_seed(0)
    nasty = dict(adversary=dict(arch="small_cnn", checkpoint=small_cnn_file)) if method == "nat" else None
    model = AdversarialClassifier("small_cnn", 10, METHODS[method], nasty=nasty,
                                  val_attack=dict(steps=2, n_examples=2)).train()
    wrapper = build_optim_wrapper(model, dict(type=WRAPPER, optimizer=dict(type="SGD", lr=0.1)))
    return model, wrapper


@pytest.mark.parametrize("method", list(METHODS))
def test_a_train_step_runs_attack_and_loss_in_bf16_on_fp32_weights(method, small_cnn_file, monkeypatch):
    model, wrapper = amp_model(method, small_cnn_file)
    assert isinstance(wrapper, MixedPrecisionOptimWrapper) and wrapper.cast_dtype == torch.bfloat16
    assert not wrapper.loss_scaler.is_enabled()  # bfloat16 needs no loss scaling

    forwards, crafted = [], []  # (train mode, autocast on, output dtype) per network forward; x_adv
    model.classifier.register_forward_hook(lambda m, args, out: forwards.append(
        (m.training, torch.is_autocast_enabled("cpu"), out.dtype)))
    engine = core_attacks.projected_gradient_ascent

    def spy(loss_fn, x, **kwargs):
        x_adv = engine(loss_fn, x, **kwargs)
        crafted.append((x, x_adv))
        return x_adv

    monkeypatch.setattr(core_attacks, "projected_gradient_ascent", spy)  # pgd's engine
    monkeypatch.setattr(standard, "projected_gradient_ascent", spy)      # trades' engine
    before = [p.detach().clone() for p in model.parameters()]
    torch.manual_seed(2)
    log = model.train_step(dict(inputs=torch.rand(6, 3, 32, 32), labels=torch.arange(6)), wrapper)

    assert torch.isfinite(log["loss"])
    assert forwards and all(on and dtype == torch.bfloat16 for _, on, dtype in forwards)
    assert any(training for training, _, _ in forwards)  # the loss forward
    if method != "vanilla":
        assert len(forwards) > ATTACK["steps"]  # the attack's steps (in its method's mode) and the loss
        assert len(crafted) == 1
        x, x_adv = crafted[0]
        assert x_adv.dtype == torch.float32
        assert (x_adv - x).abs().max() <= EPS + 1e-6 and (x_adv - x).abs().max() > EPS / 2
        assert x_adv.min() >= 0 and x_adv.max() <= 1
    after = list(model.parameters())
    assert all(p.dtype == torch.float32 for p in after)
    assert any(not torch.equal(a, b) for a, b in zip(after, before))  # the optimizer stepped them
    assert not torch.is_autocast_enabled("cpu")  # the context ends with the forward


def test_validation_predicts_in_float32(small_cnn_file):
    model, _ = amp_model("pgd_at", small_cnn_file)
    dtypes = []
    model.classifier.register_forward_hook(lambda m, args, out: dtypes.append(out.dtype))
    model.eval()  # what mmengine's ValLoop does; its val_step runs without autocast
    predictions = model.val_step(dict(inputs=torch.rand(4, 3, 32, 32), labels=torch.arange(4)))
    assert predictions[0]["adv_correct"] is not None  # the PGD of validation ran too
    assert dtypes and set(dtypes) == {torch.float32}


def test_the_nasty_term_is_float32_under_autocast():
    torch.manual_seed(0)
    t, a = torch.randn(5, 10).bfloat16(), torch.randn(5, 10).bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        amp = NastyLoss(weight=0.5, tau=4.0, reduction="none")(t, a)
    exact = NastyLoss(weight=0.5, tau=4.0, reduction="none")(t.float(), a.float())
    assert amp.dtype == torch.float32
    torch.testing.assert_close(amp, exact, rtol=1e-6, atol=1e-7)


def test_dtype_choice_per_device(monkeypatch):
    assert amp_dtype("cpu") == "bfloat16"
    with pytest.raises(NatError, match="float16 needs a CUDA device"):
        amp_dtype("cpu", "float16")
    with pytest.raises(NatError, match="expected one of bfloat16, float16"):
        amp_dtype("cpu", "float64")
    with pytest.raises(NatError, match="cpu or cuda"):
        amp_dtype("mps")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a, **k: "Tesla V100")
    assert amp_dtype("cuda") == "float16"  # float16 + loss scaler on GPUs without bfloat16
    with pytest.raises(NatError, match="Tesla V100 has no bfloat16"):
        amp_dtype("cuda", "bfloat16")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert amp_dtype("cuda") == "bfloat16"


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("amp_cli")
    data = write_cifar10(str(tmp / "data"), per_batch=10)
    return write_config(tmp / "tiny.py", data_root=data, model=dict(method=dict(steps=1)),
                        train_cfg=dict(max_epochs=1))


def train_cls_main(monkeypatch, *argv):
    """tools/train_cls.py's main, in this process (no interpreter start-up: the machine is slow)."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # what --device cpu sets; restored afterwards
    spec = importlib.util.spec_from_file_location("tool_train_cls", os.path.join(REPO, "tools", "train_cls.py"))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool.main([str(a) for a in argv])


def test_train_cls_amp_trains_writes_a_float32_checkpoint_and_resumes(tiny_config, tmp_path, monkeypatch):
    train_cls_main(monkeypatch, tiny_config, "--amp", "--device", "cpu", "--work-dir", tmp_path)
    checkpoint = torch.load(tmp_path / "epoch_1.pth", map_location="cpu", weights_only=True)
    weights = checkpoint["state_dict"]
    assert weights and all(v.dtype == torch.float32 for k, v in weights.items() if v.is_floating_point())
    assert "loss_scaler" in checkpoint["optimizer"]  # saved through the AMP wrapper
    with open(tmp_path / "tiny.py") as f:  # the config the run used, as mmengine dumped it
        assert f"type='{WRAPPER}'" in f.read().replace('"', "'")
    # --resume restores the wrapper's state (the scaler's included) and trains on
    train_cls_main(monkeypatch, tiny_config, "--amp", "--device", "cpu", "--work-dir", tmp_path, "--resume",
                   "--cfg-options", "train_cfg.max_epochs=2")
    resumed = torch.load(tmp_path / "epoch_2.pth", map_location="cpu", weights_only=True)
    assert resumed["meta"]["epoch"] == 2 and "loss_scaler" in resumed["optimizer"]


def test_train_cls_amp_dtype_the_device_cannot_run_is_one_line(tiny_config, tmp_path, monkeypatch, capsys):
    with pytest.raises(SystemExit) as exit_info:
        train_cls_main(monkeypatch, tiny_config, "--amp", "--amp-dtype", "float16", "--device", "cpu",
                       "--work-dir", tmp_path)
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip() == ("error: --amp-dtype float16 needs a CUDA device; "
                                               "CPU autocast runs bfloat16 (the default)")
    assert not os.listdir(tmp_path)  # it fails before the runner makes anything
