"""RSLAD, ARD and IAD (methods/distillation.py): each loss against its formula on hand-built linear
models, each attack against the one its reference code runs, the teacher never trained."""
import math

import pytest
import torch
import torch.nn.functional as F

from nat_tasks.cls.methods import build_method
from nat_tasks.core.adversary import FrozenAdversary
from nat_tasks.core.attacks import pgd, projected_gradient_ascent
from nat_tasks.core.errors import NatError

from .test_methods import ModeRecorder, X, Y, adversary, ce, kl, linear, log_softmax, target

ATTACK = dict(eps=0.1, alpha=0.05, steps=3)
SETTINGS = dict(rslad=dict(), ard=dict(temperature=2.0, weight=0.7),
                iad=dict(temperature=2.0, weight=0.7, beta=0.5, begin=5))


def method(name, teacher, epoch=10, **settings):
    """``name`` bound to ``teacher`` (and IAD's epoch) as ``model.teacher`` binds them."""
    return build_method(dict(type=name, **ATTACK, **settings), teacher=teacher, epoch_source=lambda: epoch)


def gradients(model, loss):
    return torch.autograd.grad(loss, list(model.parameters()))


def test_rslad_is_five_sixths_adversarial_one_sixth_clean_kl_to_the_teachers_clean_soft_labels():
    model, teacher = target(), adversary()
    terms = method("rslad", teacher)(model, X, Y)
    t = teacher(X)
    # the attack maximises KL(p_t(x) || p_s(x')) from x itself (no random start)
    x_adv = projected_gradient_ascent(lambda xa: kl(t, model(xa), 1.0), X, **ATTACK, random_start=False)
    assert (x_adv - X).abs().max() <= 0.1 + 1e-6 and not torch.equal(x_adv, X)
    kl_adv, kl_clean = kl(t, model(x_adv), 1.0).mean(), kl(t, model(X), 1.0).mean()
    assert kl_adv > kl_clean > 0
    assert terms["loss_kl_adv"].item() == pytest.approx(0.1 * 5 / 6 * kl_adv.item(), abs=1e-7)
    assert terms["loss_kl_clean"].item() == pytest.approx(0.1 * 1 / 6 * kl_clean.item(), abs=1e-7)
    # the reference's own formula: mean over the B x C entries of -log p_s * p_t + log(p_t + 1e-5) * p_t,
    # with C = 10 on CIFAR-10 (x 10 and C = 100 on CIFAR-100); here C = 3, hence x 3 / 10
    p_t = F.softmax(t, dim=1)

    def reference(logits):
        return (-F.log_softmax(logits, dim=1) * p_t + torch.log(p_t + 1e-5) * p_t).mean() * 3 / 10

    ours = terms["loss_kl_adv"] + terms["loss_kl_clean"]
    theirs = 5 / 6 * reference(model(x_adv)) + 1 / 6 * reference(model(X))
    assert ours.item() == pytest.approx(theirs.item(), abs=1e-5)  # the 1e-5 inside the constant log
    for a, b in zip(gradients(model, ours), gradients(model, theirs)):
        assert torch.allclose(a, b, atol=1e-7)


def test_rslad_known_numbers_without_attack():
    """eps = 0, a uniform student, a two-class teacher with logits (1, 0): loss = 0.1 KL(p || 1/2)."""
    student = linear([[0.0] * 4, [0.0] * 4], [0.0, 0.0])
    teacher = FrozenAdversary(linear([[1.0, 0, 0, 0], [0, 0, 0, 0]], [0.0, 0.0]))
    x = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])
    rslad = build_method(dict(type="rslad", eps=0.0, alpha=0.1, steps=1), teacher=teacher)
    terms = rslad(student, x, torch.tensor([1]))
    p = 1 / (1 + math.exp(-1))
    expected = p * math.log(2 * p) + (1 - p) * math.log(2 * (1 - p))
    assert terms["loss_kl_adv"].item() + terms["loss_kl_clean"].item() == pytest.approx(0.1 * expected, abs=1e-7)


@pytest.mark.parametrize("weight", [0.7, 1.0])
def test_ard_is_tau2_kl_over_classes_on_student_pgd_examples_plus_clean_ce(weight):
    model, teacher, tau = target(), adversary(), 2.0
    torch.manual_seed(4)
    terms = method("ard", teacher, temperature=tau, weight=weight)(model, X, Y)
    torch.manual_seed(4)
    x_adv = pgd(model.eval(), X, Y, random_start=True, **ATTACK)  # PGD on the student's CE
    model.train()
    kd = kl(teacher(X) / tau, model(x_adv) / tau, 1.0).mean() / 3  # KLDivLoss(): mean over B x C
    with pytest.warns(UserWarning, match="'mean' divides the total loss by both"):  # as nn.KLDivLoss()
        reference = F.kl_div(F.log_softmax(model(x_adv) / tau, dim=1), F.softmax(teacher(X) / tau, dim=1),
                             reduction="mean")
    assert kd.item() == pytest.approx(reference.item(), abs=1e-8)
    assert terms["loss_kd"].item() == pytest.approx(weight * tau ** 2 * kd.item(), abs=1e-7)
    if weight < 1:
        assert terms["loss_ce"].item() == pytest.approx((1 - weight) * ce(model(X), Y).mean().item(), abs=1e-6)
    else:  # no CE term: the clean cross-entropy is only logged
        assert "loss_ce" not in terms and not terms["ce_clean"].requires_grad
        assert terms["ce_clean"].item() == pytest.approx(ce(model(X), Y).mean().item(), abs=1e-6)


def test_iad_before_its_warm_up_ends_is_ard_with_a_per_sample_kl():
    model, teacher, tau = target(), adversary(), 2.0
    torch.manual_seed(5)
    terms = method("iad", teacher, epoch=4, **SETTINGS["iad"])(model, X, Y)
    torch.manual_seed(5)
    x_adv = pgd(model.eval(), X, Y, random_start=True, **ATTACK)
    model.train()
    kd = 0.7 * tau ** 2 * kl(teacher(X) / tau, model(x_adv) / tau, 1.0).mean()
    assert set(terms) == {"loss_kd", "loss_ce"}
    assert terms["loss_kd"].item() == pytest.approx(kd.item(), abs=1e-6)
    assert terms["loss_ce"].item() == pytest.approx(0.3 * ce(model(X), Y).mean().item(), abs=1e-6)


def test_iad_introspection_weighs_the_students_own_kl_by_the_teachers_distrust():
    model, teacher, tau, beta = target(), adversary(), 2.0, 0.5
    torch.manual_seed(6)
    terms = method("iad", teacher, epoch=5, **SETTINGS["iad"])(model, X, Y)
    torch.manual_seed(6)
    x_adv = pgd(model.eval(), X, Y, random_start=True, **ATTACK)
    model.train()
    # the teacher's trust: its probability of the true class on the student's adversarial example
    trust = log_softmax(teacher(x_adv)).exp()[torch.arange(3), Y] ** beta
    assert 0 < trust.min() and trust.max() < 1 and trust.std() > 0.01
    introspection = 0.7 * ((1 - trust) * kl(model(X), model(x_adv), 1.0)).mean()  # KL(p_s(x) || p_s(x'))
    assert terms["teacher_trust"].item() == pytest.approx(trust.mean().item(), abs=1e-6)
    assert terms["loss_introspection"].item() == pytest.approx(introspection.item(), abs=1e-7)
    assert terms["loss_kd"].item() == pytest.approx(
        0.7 * tau ** 2 * kl(teacher(X) / tau, model(x_adv) / tau, 1.0).mean().item(), abs=1e-6)
    # the target p_s(x) keeps its gradient, as in the reference
    for a, b in zip(gradients(model, terms["loss_introspection"]), gradients(model, introspection)):
        assert torch.allclose(a, b, atol=1e-7)


def test_iad_outside_a_run_is_one_line():
    with pytest.raises(NatError, match="^method iad needs the training epoch: run it in the trainer"):
        method("iad", adversary(), epoch=None)(target(), X, Y)


@pytest.mark.parametrize("name,attack_mode", [("rslad", False), ("ard", True), ("iad", True)])
def test_attacks_are_crafted_in_their_reference_mode_and_the_teacher_gets_no_gradient(name, attack_mode):
    """RSLAD's code crafts in eval mode, ARD's and IAD's in train mode (BatchNorm statistics move)."""
    model, teacher = ModeRecorder().train(), adversary()
    terms = method(name, teacher, **SETTINGS[name])(model, X, Y)
    assert model.training
    assert model.modes.count(attack_mode) == 3 + 2 * attack_mode  # 3 steps (+ the 2 loss forwards)
    assert model.modes.count(True) == int(model.bn.num_batches_tracked) == 2 + 3 * attack_mode
    sum(v for k, v in terms.items() if "loss" in k).backward()
    assert all(p.grad is not None for p in model.parameters())
    assert all(p.grad is None and not p.requires_grad for m in teacher.models for p in m.parameters())


@pytest.mark.parametrize("cfg,message", [
    (dict(type="rslad", **ATTACK), "method rslad needs model.teacher=dict(arch=..., checkpoint=..., trained_by=...)"),
    (dict(type="ard", **ATTACK), "method ard needs model.teacher="),
    (dict(type="iad", **ATTACK, alpha1=0.5), "unexpected keyword argument 'alpha1'"),
])
def test_bad_distillation_configs_fail_clearly(cfg, message):
    with pytest.raises(NatError) as err:
        build_method(cfg, **({"teacher": adversary(), "epoch_source": lambda: 0} if "alpha1" in cfg else {}))
    assert message in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("name,settings,message", [
    ("ard", dict(weight=1.5), "method ard: weight=1.5 is outside [0.0, 1.0]"),
    ("iad", dict(temperature=0.0), "method iad: temperature=0.0 is outside"),
    ("rslad", dict(clean_weight=-0.1), "method rslad: clean_weight=-0.1 is outside [0.0, 1.0]"),
])
def test_bad_distillation_settings_fail_clearly(name, settings, message):
    with pytest.raises(NatError, match=message.replace("[", r"\[").replace(".", r"\.")):
        method(name, adversary(), **settings)(target(), X, Y)
