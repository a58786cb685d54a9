"""Table 11's methods against their formulas on known numbers: Nasty Teacher and PGD-AT plus LASSO,
entropy minimisation, negative norm and mixup; each trains an epoch in mmengine's runner."""
import glob
import json
import math
import os

import pytest
import torch

from nat_tasks.cls.models.architectures import build_classifier
from nat_tasks.cls.methods import build_method
from nat_tasks.cls.training.train import load_cls_config, train
from nat_tasks.core.attacks import pgd
from nat_tasks.core.errors import NatError

from .test_methods import X, Y, ModeRecorder, adversary, ce, kl, linear, log_softmax, nasty, target
from .train_helpers import write_config

ATTACK = dict(eps=0.1, alpha=0.05, steps=3)
NO_ATTACK = dict(eps=0.0, alpha=0.05, steps=1)  # x' = x: the regularizers on known logits
# One sample, logits z = [1, 0, -1] by hand; p = softmax(z).
ONE_X, ONE_Y = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]]), torch.tensor([0])
P = [math.e / (math.e + 1 + 1 / math.e), 1 / (math.e + 1 + 1 / math.e), 1 / math.e / (math.e + 1 + 1 / math.e)]


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def one_sample_model():
    return linear([[1.0, 0, 0, 0], [0, 0, 0, 0], [-1.0, 0, 0, 0]], [0.0, 0.0, 0.0])


def test_known_probabilities():
    assert one_sample_model()(ONE_X).softmax(dim=1)[0].tolist() == pytest.approx(P, abs=1e-6)


def test_nt_is_cross_entropy_plus_the_nasty_term_on_clean_images_without_attack():
    model, adv = target(), adversary()
    terms = build_method(dict(type="nt"), **nasty(adv, weight=0.04, tau=4.0))(model, X, Y)
    assert terms["loss_ce"].item() == pytest.approx(ce(model(X), Y).mean().item(), abs=1e-6)
    expected = -0.04 * 16 * kl(model(X), adv(X), tau=4.0).mean().item()
    assert expected < 0 and terms["loss_nasty"].item() == pytest.approx(expected, abs=1e-7)
    recorder = ModeRecorder().train()
    build_method(dict(type="nt"), **nasty())(recorder, X, Y)
    assert recorder.modes == [True]  # one clean forward, no attack


def test_at_lasso_adds_1e_4_times_the_l1_norm_of_every_parameter():
    torch.manual_seed(1)
    terms = build_method(dict(type="at_lasso", **ATTACK))(target(), X, Y)
    # |TARGET_W| sums to 3.5 + 4 + 3.5 = 11, |bias| to 0.3
    assert terms["loss_lasso"].item() == pytest.approx(1e-4 * 11.3, abs=1e-9)
    torch.manual_seed(1)
    assert terms["loss_ce_adv"].item() == pytest.approx(
        build_method(dict(type="pgd_at", **ATTACK))(target(), X, Y)["loss_ce_adv"].item(), abs=1e-7)


def test_at_emr_adds_the_entropy_known_numbers():
    terms = build_method(dict(type="at_emr", **NO_ATTACK))(one_sample_model(), ONE_X, ONE_Y)
    entropy = -sum(p * math.log(p) for p in P)  # 0.8324
    assert terms["loss_emr"].item() == pytest.approx(1e-3 * entropy, abs=1e-9)
    assert terms["loss_ce_adv"].item() == pytest.approx(-math.log(P[0]), abs=1e-6)


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_at_emr_and_nnr_on_adversarial_predictions(reduction):
    model = target()
    reduce = torch.sum if reduction == "sum" else torch.mean
    torch.manual_seed(2)
    emr = build_method(dict(type="at_emr", weight=0.5, reduction=reduction, **ATTACK))(model, X, Y)
    torch.manual_seed(2)
    nnr = build_method(dict(type="at_nnr", weight=0.5, reduction=reduction, **ATTACK))(model, X, Y)
    torch.manual_seed(2)
    x_adv = pgd(model.eval(), X, Y, random_start=True, **ATTACK)
    log_p = log_softmax(model.train()(x_adv))
    assert emr["loss_emr"].item() == pytest.approx(0.5 * reduce(-(log_p.exp() * log_p).sum(dim=1)).item(), abs=1e-6)
    assert nnr["loss_nnr"].item() == pytest.approx(-0.5 * reduce(log_p.exp().pow(2).sum(dim=1).sqrt()).item(), abs=1e-6)
    assert emr["loss_ce_adv"].item() == pytest.approx(ce(model(x_adv), Y).mean().item(), abs=1e-6)


def test_at_nnr_known_numbers():
    terms = build_method(dict(type="at_nnr", **NO_ATTACK))(one_sample_model(), ONE_X, ONE_Y)
    assert terms["loss_nnr"].item() == pytest.approx(-1e-3 * math.sqrt(sum(p * p for p in P)), abs=1e-9)


@pytest.mark.parametrize("name,sharper", [("at_emr", lambda p: -(p * p.log()).sum()), ("at_nnr", lambda p: -p.norm())])
def test_emr_and_nnr_make_predictions_sharper(name, sharper):
    """The sign: a gradient step on the regularizer alone lowers the entropy / raises ||p||."""
    model = target()
    before = sharper(model(X).softmax(dim=1)).item()
    terms = build_method(dict(type=name, weight=1.0, **NO_ATTACK))(model, X, Y)
    terms[f"loss_{name[3:]}"].backward()
    with torch.no_grad():
        for p in model.parameters():
            p -= 0.1 * p.grad
    assert sharper(model(X).softmax(dim=1)).item() < before


def test_at_mixup_attacks_and_trains_on_0_7_0_3_mixtures_of_batch_partners():
    model = target()
    torch.manual_seed(3)
    terms = build_method(dict(type="at_mixup", **ATTACK))(model, X, Y)
    torch.manual_seed(3)
    partner = torch.randperm(3)
    mixed = 0.7 * X + 0.3 * X[partner]

    def mixed_ce(logits, y=None, x_adv=None):
        return 0.7 * ce(logits, Y) + 0.3 * ce(logits, Y[partner])

    x_adv = pgd(model.eval(), mixed, Y, random_start=True, loss=mixed_ce, **ATTACK)
    assert (x_adv - mixed).abs().max() <= 0.1 + 1e-6 and not torch.equal(partner, torch.arange(3))
    assert terms["loss_mixup_ce_adv"].item() == pytest.approx(mixed_ce(model.train()(x_adv)).mean().item(), abs=1e-6)


def test_bad_reduction_fails_clearly():
    with pytest.raises(NatError, match="reduction='max'; expected one of sum, mean"):
        build_method(dict(type="at_emr", reduction="max", **ATTACK))(target(), X, Y)


# ---- one epoch each in mmengine's runner (tools/train_cls.py's path, in process) -------------------

def scalars(work_dir):
    (path,) = glob.glob(os.path.join(work_dir, "*", "vis_data", "scalars.json"))
    with open(path) as f:
        return [json.loads(line) for line in f]


def train_one_epoch(tmp_path, data_root, base, **model):
    """An epoch (2 steps of 40 images) of the repo config ``base`` with a small CNN; the run's rows."""
    path = write_config(tmp_path / "config.py", base=base, data_root=str(data_root), model=model,
                        train_dataloader=dict(batch_size=40), train_cfg=dict(max_epochs=1))
    work_dir = train(load_cls_config(path, work_dir=str(tmp_path / "run")))
    assert os.path.isfile(os.path.join(work_dir, "epoch_1.pth"))
    return scalars(work_dir)


@pytest.mark.parametrize("config,term", [
    ("cifar10_preact18_at_lasso.py", "loss_lasso"), ("cifar10_preact18_at_emr.py", "loss_emr"),
    ("cifar10_preact18_at_nnr.py", "loss_nnr"), ("cifar10_preact18_at_mixup.py", "loss_mixup_ce_adv"),
    ("cifar10_preact18_nt.py", "loss_nasty")])
def test_each_method_trains_an_epoch(cifar10_root, tmp_path, config, term):
    model = dict(method=dict(eps=4 / 255, alpha=2 / 255, steps=1)) if "_at_" in config else {}
    if config.endswith("_nt.py"):
        checkpoint = tmp_path / "adversary.pth"
        torch.save(build_classifier("small_cnn", 10).state_dict(), checkpoint)  # random init (Table 8)
        model = dict(nasty=dict(adversary=dict(arch="small_cnn", checkpoint=str(checkpoint))))
    rows = train_one_epoch(tmp_path, cifar10_root, config, **model)
    assert any(term in row and math.isfinite(row[term]) for row in rows)
