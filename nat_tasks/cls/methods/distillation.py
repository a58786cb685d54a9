"""Robustness distillation from a frozen teacher (the NAT paper's Table 10): RSLAD, ARD and IAD.

The ``teacher`` is the ``FrozenAdversary`` of ``model.teacher`` (``cls/training/teacher_section.py``; IAD's
clock ``epoch_source`` is the trainer's, ``runtime/run_progress.py``): its logits are soft labels computed under ``no_grad``;
none of the three attacks differentiates through it. Each loss and inner attack follows its
reference code (read, not copied):

- RSLAD, Zi et al. ICCV 2021 (zibojia/RSLAD ``rslad_loss.py``, ``resnet18_rslad_cifar10.py``);
- ARD, Goldblum et al. AAAI 2020 (goldblum/AdversariallyRobustDistillation ``main.py``);
- IAD, Zhu et al. ICLR 2022 (ZFancy/IAD ``IAD-I.py``, the variant built on ARD).

``KL(p || q)`` below is per sample, summed over the classes; ``p_t`` is the teacher's softmax,
``p_s`` the student's, ``T`` the setting ``temperature`` (not ``tau``: a classification config's
``model.method.tau`` is refused as NAT's misplaced ``model.nasty.tau``).

Inner attacks as the references by default (``attack_mode`` / ``attack_init`` switch, as in
``standard.py``): RSLAD in eval mode from ``x + 0.001 N(0, 1)``; ARD and IAD in train mode from a
uniform start (PGD-AT's attack; their start is not clamped to the box, ours is). Forwards whose
outputs a reference never uses (IAD's ``basicop``, its second clean forward) are not run.
"""
import torch
import torch.nn.functional as F

from nat_tasks.core.attacks import crafting_mode, projected_gradient_ascent
from nat_tasks.core.errors import NatError

from nat_tasks.cls.methods.registry import register_method
from nat_tasks.cls.methods.standard import PGD_AT_INIT, PGD_AT_MODE, TRADES_INIT, TRADES_MODE, craft_pgd

# RSLAD's code takes the mean of the KL's B x C entries, i.e. the per-sample KL / 10 on CIFAR-10,
# and multiplies it by 10 on CIFAR-100 (its README: "to keep consistent with CIFAR-10"): per-sample
# KL / 10 whatever the number of classes.
RSLAD_KL_SCALE = 0.1


def soft_label_kl(student_logits, teacher_probs, temperature=1.0):
    """Per-sample ``KL(teacher_probs || softmax(student_logits / T))`` (``teacher_probs`` may carry a
    gradient: IAD's introspection target, the student's own clean prediction, does)."""
    return F.kl_div(F.log_softmax(student_logits / temperature, dim=1), teacher_probs,
                    reduction="none").sum(dim=1)


def _clean_forward(model, x, needs_grad):
    """The student on clean images. Without a gradient it still runs (in train mode): the
    references always make this forward, so BatchNorm's running statistics see the clean batch."""
    with torch.set_grad_enabled(needs_grad and torch.is_grad_enabled()):
        return model(x)


def _check(name, **bounds):
    for key, (value, low, high) in bounds.items():
        if not low <= value <= high:
            raise NatError(f"method {name}: {key}={value} is outside [{low}, {high}]")


@register_method("rslad")
def rslad(model, x, y, *, teacher, eps, alpha, steps, clean_weight=1 / 6, attack_mode=TRADES_MODE,
          attack_init=TRADES_INIT):
    """RSLAD: the teacher's clean soft labels replace the hard labels everywhere (``y`` unused).

    ``loss = 0.1 * [(1 - clean_weight) KL(p_t(x) || p_s(x')) + clean_weight KL(p_t(x) || p_s(x))]``
    (batch means; 0.1: ``RSLAD_KL_SCALE``), T = 1. x' maximises ``KL(p_t(x) || p_s(x'))`` by Linf
    sign steps, in eval mode from ``x + 0.001 N(0, 1)`` as the reference's ``rslad_inner_loss``.
    """
    _check("rslad", clean_weight=(clean_weight, 0.0, 1.0))
    p_teacher = F.softmax(teacher(x), dim=1)
    with crafting_mode(model, attack_mode):
        x_adv = projected_gradient_ascent(lambda x_adv: soft_label_kl(model(x_adv), p_teacher), x, eps=eps,
                                          alpha=alpha, steps=steps, random_start=attack_init)
    kl_adv = RSLAD_KL_SCALE * soft_label_kl(model(x_adv), p_teacher).mean()
    kl_clean = RSLAD_KL_SCALE * soft_label_kl(model(x), p_teacher).mean()
    return dict(loss_kl_adv=(1 - clean_weight) * kl_adv, loss_kl_clean=clean_weight * kl_clean)


@register_method("ard")
def ard(model, x, y, *, teacher, eps, alpha, steps, temperature=30.0, weight=1.0, attack_mode=PGD_AT_MODE,
        attack_init=PGD_AT_INIT):
    """ARD: ``weight T^2 KL(p_t(x)/T || p_s(x')/T) / C + (1 - weight) CE(s(x), y)``.

    x' is PGD on the *student's* cross-entropy with the hard labels (train mode, uniform random
    start), the teacher sees clean images. ``/ C`` (the number of classes): the reference's ``nn.KLDivLoss()``
    averages the B x C entries. T = 30, ``weight=1`` (no CE term) are its defaults.
    (IAD's repository runs ARD as ``iad`` does before its warm-up ends: T = 1, KL / B.)
    """
    _check("ard", weight=(weight, 0.0, 1.0), temperature=(temperature, 1e-6, float("inf")))
    x_adv = craft_pgd(model, x, y, eps=eps, alpha=alpha, steps=steps, attack_mode=attack_mode,
                      attack_init=attack_init)
    p_teacher = F.softmax(teacher(x) / temperature, dim=1)
    logits_adv = model(x_adv)
    kd = weight * temperature ** 2 * soft_label_kl(logits_adv, p_teacher, temperature).mean() / logits_adv.shape[1]
    ce = F.cross_entropy(_clean_forward(model, x, needs_grad=weight < 1), y)
    if weight < 1:
        return dict(loss_kd=kd, loss_ce=(1 - weight) * ce)
    return dict(loss_kd=kd, ce_clean=ce.detach())


@register_method("iad")
def iad(model, x, y, *, teacher, epoch_source, eps, alpha, steps, temperature=1.0, weight=1.0, beta=0.1,
        begin=60, attack_mode=PGD_AT_MODE, attack_init=PGD_AT_INIT):
    """IAD-I: ARD whose student, from epoch ``begin`` on, trusts the teacher in proportion to the
    teacher's confidence on the student's adversarial example and otherwise itself:

        weight T^2 KL(p_t(x)/T || p_s(x')/T)
        + [epoch >= begin] weight (1 - a) KL(p_s(x) || p_s(x'))      a = p_t(x')[y] ** beta (no grad)
        + (1 - weight) CE(s(x), y)                                     (batch means, KL / B)

    The introspection target ``p_s(x)`` keeps its gradient, as in the reference. The teacher term is
    not weighted by ``a`` in IAD-I's code (IAD-II weights it). Defaults are IAD-I's: T = 1, weight
    1, beta 0.1, begin 60 (of 200 epochs). ``epoch_source()``: the running 0-based epoch.
    """
    epoch = epoch_source()
    if epoch is None:
        raise NatError("method iad needs the training epoch: run it in the trainer (tools/train_cls.py)")
    _check("iad", weight=(weight, 0.0, 1.0), temperature=(temperature, 1e-6, float("inf")),
           beta=(beta, 0.0, float("inf")))
    introspect = epoch >= begin
    x_adv = craft_pgd(model, x, y, eps=eps, alpha=alpha, steps=steps, attack_mode=attack_mode,
                      attack_init=attack_init)
    p_teacher = F.softmax(teacher(x) / temperature, dim=1)
    logits_adv = model(x_adv)
    logits_clean = _clean_forward(model, x, needs_grad=weight < 1 or introspect)
    terms = dict(loss_kd=weight * temperature ** 2 * soft_label_kl(logits_adv, p_teacher, temperature).mean())
    if introspect:
        trust = F.softmax(teacher(x_adv), dim=1).gather(1, y[:, None]).squeeze(1).pow(beta)
        self_kl = soft_label_kl(logits_adv, F.softmax(logits_clean, dim=1))
        terms.update(loss_introspection=weight * ((1 - trust) * self_kl).mean(), teacher_trust=trust.mean())
    ce = F.cross_entropy(logits_clean, y)
    if weight < 1:
        terms["loss_ce"] = (1 - weight) * ce
    else:
        terms["ce_clean"] = ce.detach()
    return terms
