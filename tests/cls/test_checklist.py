"""The gradient-masking checklist passes an honest model and flags a gradient-masked one."""
import torch
from torch import nn

from nat_tasks.cls.evaluation.checklist import gradient_masking_checklist
from nat_tasks.cls.evaluation.attacks import ThreatModel
from nat_tasks.core.sanity import checks_markdown

THREAT = ThreatModel(eps=0.15, alpha=0.04)  # the class patterns differ by 0.2 per pixel


class Quantized(nn.Module):
    """Gradient masking by construction: rounding to 8 bits has a zero gradient everywhere."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(torch.round(x * 255) / 255)


def run(model, x, y):
    return gradient_masking_checklist(model, x, y, THREAT, square_queries=1000, strongest="apgd-ce-10",
                                      batch_size=32, progress=False, log=lambda *_: None)


def test_checklist_passes_an_honest_model_and_flags_a_masked_one(toy_model, test_batch):
    """``toy_model``: the shared 4-class MLP on 1x8x8 patterns (tests/conftest.py)."""
    model, (x, y) = toy_model, (test_batch[0][:32], test_batch[1][:32])
    _, honest_checks = run(model, x, y)
    results, masked_checks = run(Quantized(model), x, y)
    passed = {c.name: c.passed for c in honest_checks}
    assert all(passed.values()), checks_markdown(honest_checks)
    masked = {c.name: c.passed for c in masked_checks}
    assert not masked["unbounded PGD-100 (eps=1) reaches ~0 %"]
    assert not masked["black-box not stronger than white-box"]
    assert {r["eps"] for r in results} == {0.075, 0.15, 0.3, 0.6, 1.0}
    assert "| **FAIL** |" in checks_markdown(masked_checks)
