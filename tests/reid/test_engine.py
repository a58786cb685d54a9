"""The engine's loss is torchreid's CE + triplet minus the nasty term, on numbers worked by hand."""
import types

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nat_tasks.core.adversary import FrozenAdversary
from nat_tasks.core.attacks import projected_gradient_ascent
from nat_tasks.core.nasty import NastyLoss
from nat_tasks.reid.attacks import build_attack
from nat_tasks.reid.engine import AdversarialTripletEngine
from nat_tasks.reid.model import IdLogits, ReidNet

from .reference import reference_loss

NUM_IDS = 3


class ColourNet(nn.Module):
    """A torchreid-style model: embedding = per-channel image mean, logits = a fixed linear map."""

    def __init__(self, weight):
        super().__init__()
        self.classifier = nn.Linear(3, NUM_IDS, bias=False)
        with torch.no_grad():
            self.classifier.weight.copy_(torch.tensor(weight))

    def forward(self, x):
        v = x.mean((2, 3))
        return v if not self.training else (self.classifier(v), v)


def engine_for(model, **kwargs):
    datamanager = types.SimpleNamespace(num_train_pids=NUM_IDS, train_loader=None, test_loader=None)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    return AdversarialTripletEngine(datamanager, model, optimizer, device="cpu", **kwargs)


# Four flat-colour images: identity 0 twice, identity 1 twice; embeddings are these colours.
COLOURS = torch.tensor([[0.1, 0.1, 0.1], [0.2, 0.1, 0.1], [0.1, 0.1, 0.3], [0.5, 0.5, 0.5]])
PIDS = torch.tensor([0, 0, 1, 1])
TARGET_W = [[2.0, 0.0, 0.0], [0.0, 0.0, 2.0], [1.0, 1.0, 1.0]]
ADVERSARY_W = [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 3.0]]


def images():
    return COLOURS[:, :, None, None].expand(4, 3, 4, 2).clone()


def expected_loss(weight, tau, margin=0.3):
    logits, adversary_logits = COLOURS @ torch.tensor(TARGET_W).T, COLOURS @ torch.tensor(ADVERSARY_W).T
    ce = F.cross_entropy(logits, PIDS, label_smoothing=0.1)  # torchreid's label-smoothed CE
    # batch-hard triplet: hardest positive vs hardest negative per anchor (Euclidean)
    dist = torch.cdist(COLOURS, COLOURS)
    same = PIDS[:, None] == PIDS[None, :]
    hardest_pos = dist.masked_fill(~same, -1).max(1).values
    hardest_neg = dist.masked_fill(same, 1e9).min(1).values
    triplet = (hardest_pos - hardest_neg + margin).clamp_min(0).mean()
    p_t, p_a = F.softmax(logits / tau, 1), F.softmax(adversary_logits / tau, 1)
    kl = (p_t * (p_t.log() - p_a.log())).sum(1).mean()
    return ce, triplet, ce + triplet - weight * tau ** 2 * kl


def test_loss_is_ce_plus_triplet_minus_nasty_term():
    # Worked numbers: anchor 0 -> hardest positive 0.1 (image 1), hardest negative 0.2 (image 2),
    # so the triplet term of anchor 0 is 0.1 - 0.2 + 0.3 = 0.2.
    ce, triplet, total = expected_loss(weight=0.5, tau=2.0)
    assert torch.cdist(COLOURS, COLOURS)[0, 1].item() == pytest.approx(0.1)
    model = ReidNet(ColourNet(TARGET_W), mean=(0, 0, 0), std=(1, 1, 1)).train()
    adversary = FrozenAdversary(IdLogits(ReidNet(ColourNet(ADVERSARY_W), mean=(0, 0, 0), std=(1, 1, 1))))
    engine = engine_for(model, nasty=NastyLoss(0.5, 2.0), adversary=adversary)
    loss, terms = engine.loss_terms(images(), PIDS)
    assert terms["loss_x"].item() == pytest.approx(ce.item(), abs=1e-6)
    assert terms["loss_t"].item() == pytest.approx(triplet.item(), abs=1e-6)
    assert loss.item() == pytest.approx(total.item(), abs=1e-6)
    assert terms["loss_nasty"].item() == pytest.approx((total - ce - triplet).item(), abs=1e-6)
    assert terms["loss_nasty"].item() < 0


def test_amd_step_trains_on_clean_and_adversarial_images():
    model = ReidNet(ColourNet(TARGET_W), mean=(0, 0, 0), std=(1, 1, 1)).train()
    attack = build_attack("ifgsm", eps=4 / 255, alpha=1 / 255, steps=3)
    engine = engine_for(model, train_attack=attack)
    x = images()
    adv = engine.adversarial_examples(x, PIDS)
    assert model.training  # restored after crafting in eval mode
    assert (adv - x).abs().max() <= 4 / 255 + 1e-6 and (adv - x).abs().max() > 0
    assert all(p.grad is None for p in model.parameters())  # crafting leaves .grad alone

    seen = []
    original = engine.loss_terms
    engine.loss_terms = lambda imgs, pids: seen.append((imgs, pids)) or original(imgs, pids)
    summary = engine.forward_backward({"img": x, "pid": PIDS})
    imgs, pids = seen[0]
    assert torch.equal(imgs[:4], x) and torch.equal(imgs[4:], adv)  # deterministic attack
    assert torch.equal(pids, PIDS.repeat(2))
    assert set(summary) == {"loss_t", "loss_x", "acc", "loss"}


def test_diverging_loss_is_a_clear_error():
    model = ReidNet(ColourNet(TARGET_W), mean=(0, 0, 0), std=(1, 1, 1)).train()
    engine = engine_for(model)
    x = images()
    x[0, 0, 0, 0] = float("nan")
    from nat_tasks.core.errors import NatError
    with pytest.raises(NatError, match="diverged"):
        engine.forward_backward({"img": x, "pid": PIDS})


def test_amd_crafts_with_the_evaluations_reference_weighting():
    """AMD's inner FNA is the evaluation's: the push sums the K = 3 batch guides of an identity,
    the pull toward the furthest other identity counts once (the reference's objective)."""
    colours = torch.tensor([[0.5, 0.5, 0.5], [0.45, 0.5, 0.55], [0.4, 0.45, 0.5],
                            [0.3, 0.6, 0.5], [0.6, 0.4, 0.45], [0.35, 0.55, 0.6]])
    pids = torch.tensor([0, 0, 0, 1, 1, 1])
    x = colours[:, :, None, None].expand(6, 3, 4, 2).clone()
    model = ReidNet(ColourNet(TARGET_W), mean=(0, 0, 0), std=(1, 1, 1)).train()
    budget = dict(eps=6 / 255, alpha=2 / 255, steps=3)
    engine = engine_for(model, train_attack=build_attack("fna", **budget))
    clean = x.mean((2, 3))
    expected = projected_gradient_ascent(
        lambda x_adv: reference_loss(x_adv.mean((2, 3)), clean, pids, "fna"), x, **budget,
        random_start=False)
    assert torch.equal(engine.adversarial_examples(x, pids), expected)
