"""Re-ID ``--amp`` (``train.amp``): AMD's metric attack and the training forward under autocast,
float32 adversarial images inside the budget, float32 losses and weights."""
import os

import pytest
import torch

import nat_tasks.reid.attacks as reid_attacks
from nat_tasks.core.adversary import FrozenAdversary
from nat_tasks.core.nasty import NastyLoss
from nat_tasks.reid.attacks import build_attack
from nat_tasks.reid.cli import train_main
from nat_tasks.reid.model import IdLogits, ReidNet

from .test_engine import ADVERSARY_W, PIDS, TARGET_W, ColourNet, engine_for, images

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EPS = 4 / 255


def test_amd_nat_step_under_bf16_autocast(attack_spy):
    model = ReidNet(ColourNet(TARGET_W), mean=(0, 0, 0), std=(1, 1, 1)).train()
    adversary = FrozenAdversary(IdLogits(ReidNet(ColourNet(ADVERSARY_W), mean=(0, 0, 0), std=(1, 1, 1))))
    engine = engine_for(model, train_attack=build_attack("ifgsm", eps=EPS, alpha=1 / 255, steps=3),
                        nasty=NastyLoss(0.5, 2.0), adversary=adversary, amp_dtype=torch.bfloat16)
    assert not engine.scaler.is_enabled()  # bfloat16: no loss scaling
    crafted = attack_spy(reid_attacks)
    logits_dtypes = []
    model.backbone.classifier.register_forward_hook(lambda m, args, out: logits_dtypes.append(out.dtype))
    before = [p.detach().clone() for p in model.parameters()]
    seen = []
    original = engine.loss_terms
    engine.loss_terms = lambda imgs, pids: seen.append(original(imgs, pids)) or seen[-1]
    summary = engine.forward_backward({"img": images(), "pid": PIDS})

    (autocast, x, x_adv), = crafted
    assert autocast == (True, torch.bfloat16)
    assert x_adv.dtype == torch.float32 and 0 < (x_adv - x).abs().max() <= EPS + 1e-6
    assert logits_dtypes and set(logits_dtypes) == {torch.bfloat16}  # the training forward
    loss, terms = seen[0]
    assert all(terms[k].dtype == torch.float32 for k in ("loss_t", "loss_x", "loss_nasty", "loss"))
    assert set(summary) == {"loss_t", "loss_x", "acc", "loss_nasty", "loss"}
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert any(not torch.equal(p, b) for p, b in zip(model.parameters(), before))
    assert not torch.is_autocast_enabled("cpu")


def test_amp_dtype_the_device_cannot_run_is_one_line(tmp_path):
    from nat_tasks.core.errors import NatError

    config = os.path.join(REPO, "configs", "reid", "synthetic_market1501_resnet18_amd.py")
    with pytest.raises(NatError, match="^--amp-dtype float16 needs a CUDA device"):
        train_main([config, "--amp", "--amp-dtype", "float16", "--device", "cpu", "--work-dir", tmp_path / "w"])
    assert not (tmp_path / "w" / "latest.pth").exists()
