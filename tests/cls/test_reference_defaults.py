"""One training step of each method against its reference code's step, written out here from the
reference (read, not copied), same seed, for every (attack_mode, attack_init) pair; parameters and
BatchNorm statistics compared after the optimizer step.

- PGD-AT: locuslab/robust_overfitting ``train_cifar.py`` (``attack_pgd`` and the train loop);
- TRADES: yaodongyu/TRADES ``trades.py``; MART: YisenWang/MART ``mart.py``;
- RSLAD: zibojia/RSLAD ``rslad_loss.py`` / ``resnet18_rslad_cifar10.py``;
- AT-AWP and TRADES-AWP: csdongxian/AWP ``AT_AWP/train_cifar10.py``, ``trades_AWP/train_trades_cifar.py``
  and their ``utils_awp.py``.
Forwards of a reference whose outputs its step never uses for the loss (robust_overfitting's
restart-selection forward after the attack and its logging forward after the step; TRADES' second
clean forward) move its BatchNorm running statistics but not its parameters: ``redundant=True``
runs them (the verbatim step: parameters equal), ``redundant=False`` leaves them out (then the
running statistics are equal too).
"""
import copy
import itertools

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from torch import nn

from nat_tasks.cls.methods import build_method
from nat_tasks.core.adversary import FrozenAdversary
from nat_tasks.core.nasty import NastyLoss

EPS, ALPHA, STEPS, BETA = 0.1, 0.04, 3, 6.0
PAIRS = list(itertools.product(("train", "eval"), ("uniform", "normal", "none")))

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


class Net(nn.Module):
    """Conv + BatchNorm + linear: the attack's mode changes its outputs and its BN statistics."""

    def __init__(self, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.conv, self.bn, self.fc = nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Linear(64, 10)

    def forward(self, x):
        return self.fc(F.relu(self.bn(self.conv(x))).flatten(1))


def batch():
    torch.manual_seed(1)
    x = torch.rand(8, 1, 6, 6)
    x[:, :, 0], x[:, :, -1] = 0.0, 1.0  # pixels on the box's faces: the start's clamp matters
    return x, torch.randint(0, 10, (8,))  # 10 classes: RSLAD's mean over B x C is KL / 10


def sgd(model):
    return torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)


def our_step(model, cfg, seed, **context):
    x, y = batch()
    optimizer = sgd(model)
    torch.manual_seed(seed)
    terms = build_method(cfg, **context)(model.train(), x, y)
    optimizer.zero_grad()
    sum(v for k, v in terms.items() if "loss" in k).backward()
    optimizer.step()


def assert_same(ours, reference, buffers=True):
    for (name, p), q in zip(ours.named_parameters(), reference.parameters()):
        assert torch.allclose(p, q, atol=1e-6), name
    if buffers:
        for (name, b), c in zip(ours.named_buffers(), reference.buffers()):
            assert torch.allclose(b.float(), c.float(), atol=1e-6), name


def start(x, init):
    """The start point each reference draws (same calls, so the same random numbers)."""
    if init == "uniform":  # robust_overfitting: delta ~ U(-eps, eps), clamped to the box
        delta = torch.zeros_like(x).uniform_(-EPS, EPS)
        return x + torch.max(torch.min(delta, 1 - x), -x)
    if init == "normal":  # TRADES, MART, RSLAD: x + 0.001 N(0, 1), not clamped
        return x.detach() + 0.001 * torch.randn(x.shape).detach()
    return x.clone()


def robust_overfitting_attack(model, x, y, mode, init, redundant):
    """``attack_pgd`` (restarts 1, l_inf) in ``mode`` from ``init``: the delta-space loop."""
    model.train(mode == "train")
    delta = (start(x, init) - x).requires_grad_(True)
    for _ in range(STEPS):
        loss = F.cross_entropy(model(x + delta), y)
        loss.backward()  # also into the parameters' .grad: zeroed before the training backward
        d = torch.clamp(delta + ALPHA * torch.sign(delta.grad.detach()), min=-EPS, max=EPS)
        d = torch.max(torch.min(d, 1 - x), -x)
        delta.data = d.detach()
        delta.grad.zero_()
    if redundant:  # the restart selection's forward (all_loss), in the same mode
        F.cross_entropy(model(x + delta), y, reduction="none")
    model.train()
    return torch.clamp(x + delta.detach(), 0, 1)


def reference_pgd_at_step(model, mode, init, seed, redundant=True, awp_gamma=None):
    """robust_overfitting's training step; with ``awp_gamma``: AT-AWP's (``calc_awp`` on a proxy
    with plain SGD, lr 0.01, on -CE; ``perturb``; the step; ``restore``)."""
    x, y = batch()
    optimizer = sgd(model)
    torch.manual_seed(seed)
    x_adv = robust_overfitting_attack(model, x, y, mode, init, redundant)
    diff = None
    if awp_gamma is not None:
        diff = awp_diff(model, lambda proxy: -F.cross_entropy(proxy(x_adv), y))
        add_into_weights(model, diff, awp_gamma)
    robust_loss = F.cross_entropy(model(x_adv), y)
    optimizer.zero_grad()
    robust_loss.backward()
    optimizer.step()
    if diff is not None:
        add_into_weights(model, diff, -awp_gamma)
    if redundant:  # the clean forward that logs the training accuracy
        model(x)


def awp_diff(model, proxy_loss, lr=0.01):
    """``calc_awp`` + ``diff_in_weights``: one SGD step of a proxy on ``proxy_loss``, then per weight
    tensor (dim > 1, 'weight' in its name) ``||w|| / (||diff|| + 1e-20) * diff``."""
    proxy = copy.deepcopy(model).train()
    proxy_optim = torch.optim.SGD(proxy.parameters(), lr=lr)
    proxy_optim.zero_grad()
    proxy_loss(proxy).backward()
    proxy_optim.step()
    diff = {}
    for (name, old), new in zip(model.state_dict().items(), proxy.state_dict().values()):
        if old.dim() > 1 and "weight" in name:
            diff[name] = old.norm() / ((new - old).norm() + 1e-20) * (new - old)
    return diff


def add_into_weights(model, diff, coeff):
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name in diff:
                p.add_(coeff * diff[name])


def trades_attack(model, x, mode, init, loss=None, redundant=True):
    """``trades_loss``'s l_inf attack in ``mode`` from ``init``; ``loss(x_adv)``: MART's CE instead
    of TRADES' KL (MART's attack is TRADES' with that loss). The reference recomputes the clean
    prediction at every step (the same values; in train mode each moves the BN statistics)."""
    model.train(mode == "train")
    x_adv = start(x, init)
    clean = None if redundant else model(x).detach()
    for _ in range(STEPS):
        x_adv.requires_grad_()
        with torch.enable_grad():
            if loss is None:
                target = model(x) if clean is None else clean
                value = F.kl_div(F.log_softmax(model(x_adv), dim=1), F.softmax(target, dim=1), reduction="sum")
            else:
                value = loss(x_adv)
        grad = torch.autograd.grad(value, [x_adv])[0]
        x_adv = x_adv.detach() + ALPHA * torch.sign(grad.detach())
        x_adv = torch.min(torch.max(x_adv, x - EPS), x + EPS)
        x_adv = torch.clamp(x_adv, 0.0, 1.0)
    model.train()
    return torch.clamp(x_adv, 0.0, 1.0)


def trades_loss(model, x, x_adv, y, redundant):
    logits = model(x)
    clean_target = model(x) if redundant else logits  # the reference's second clean forward
    kl = F.kl_div(F.log_softmax(model(x_adv), dim=1), F.softmax(clean_target, dim=1), reduction="sum")
    return F.cross_entropy(logits, y) + BETA * kl / len(x)


def reference_trades_step(model, mode, init, seed, redundant=True, awp_gamma=None):
    """trades.py's step; with ``awp_gamma``: TRADES-AWP's (``TradesAWP.calc_awp``: the proxy's SGD
    step, lr 0.1 here, on -(CE + beta KL); then the loss on the perturbed weights, in
    train_trades_cifar.py's order: adversarial, clean target, clean logits)."""
    x, y = batch()
    optimizer = sgd(model)
    torch.manual_seed(seed)
    x_adv = trades_attack(model, x, mode, init, redundant=redundant)
    diff = None
    if awp_gamma is not None:
        diff = awp_diff(model, lambda proxy: -trades_loss(proxy, x, x_adv, y, redundant=True), lr=0.1)
        add_into_weights(model, diff, awp_gamma)
    optimizer.zero_grad()
    if awp_gamma is None:
        loss = trades_loss(model, x, x_adv, y, redundant)
    else:
        logits_adv, clean_target, logits = model(x_adv), model(x), model(x)
        kl = F.kl_div(F.log_softmax(logits_adv, dim=1), F.softmax(clean_target, dim=1), reduction="batchmean")
        loss = F.cross_entropy(logits, y) + BETA * kl
    loss.backward()
    optimizer.step()
    if diff is not None:
        add_into_weights(model, diff, -awp_gamma)


def reference_mart_step(model, mode, init, seed):
    """mart.py's step (its attack: TRADES' loop on the cross-entropy)."""
    x, y = batch()
    optimizer = sgd(model)
    torch.manual_seed(seed)
    x_adv = trades_attack(model, x, mode, init, loss=lambda xa: F.cross_entropy(model(xa), y))
    optimizer.zero_grad()
    logits, logits_adv = model(x), model(x_adv)
    adv_probs = F.softmax(logits_adv, dim=1)
    tmp1 = torch.argsort(adv_probs, dim=1)[:, -2:]
    new_y = torch.where(tmp1[:, -1] == y, tmp1[:, -2], tmp1[:, -1])
    loss_adv = F.cross_entropy(logits_adv, y) + F.nll_loss(torch.log(1.0001 - adv_probs + 1e-12), new_y)
    nat_probs = F.softmax(logits, dim=1)
    true_probs = torch.gather(nat_probs, 1, y.unsqueeze(1).long()).squeeze()
    kl = F.kl_div(torch.log(adv_probs + 1e-12), nat_probs, reduction="none").sum(dim=1)
    (loss_adv + BETA * (kl * (1.0000001 - true_probs)).sum() / len(x)).backward()
    optimizer.step()


def reference_rslad_step(model, teacher, mode, init, seed):
    """rslad_inner_loss (TRADES' loop on the KL to the teacher's clean soft labels) and the loss of
    resnet18_rslad_cifar10.py: 5/6 KL(t(x) || s(x')) + 1/6 KL(t(x) || s(x)), means over B x C."""
    x, _ = batch()
    optimizer = sgd(model)
    torch.manual_seed(seed)
    teacher_logits = teacher(x)
    x_adv = trades_attack(model, x, mode, init, loss=lambda xa: F.kl_div(
        F.log_softmax(model(xa), dim=1), F.softmax(teacher_logits, dim=1), reduction="sum"))
    optimizer.zero_grad()
    adv_logits, nat_logits = model(x_adv), model(x)
    kl_adv = F.kl_div(F.log_softmax(adv_logits, dim=1), F.softmax(teacher_logits, dim=1), reduction="none").mean()
    kl_nat = F.kl_div(F.log_softmax(nat_logits, dim=1), F.softmax(teacher_logits, dim=1), reduction="none").mean()
    (5 / 6.0 * kl_adv + 1 / 6.0 * kl_nat).backward()
    optimizer.step()


def attack_settings(mode, init, default):
    """The method's settings; without the switches for its reference pair ``default``: the test of
    that pair is the test of the default."""
    switches = {} if (mode, init) == default else dict(attack_mode=mode, attack_init=init)
    return dict(eps=EPS, alpha=ALPHA, steps=STEPS, **switches)


AT, TRADES = ("train", "uniform"), ("eval", "normal")  # the references' (mode, start)


@pytest.mark.parametrize("mode,init", PAIRS)
def test_pgd_at_step_is_robust_overfittings(mode, init):
    ours, verbatim, lean = Net(), Net(), Net()
    our_step(ours, dict(type="pgd_at", **attack_settings(mode, init, AT)), seed=2)
    reference_pgd_at_step(verbatim, mode, init, seed=2)
    reference_pgd_at_step(lean, mode, init, seed=2, redundant=False)
    assert_same(ours, verbatim, buffers=False)
    assert_same(ours, lean)


@pytest.mark.parametrize("mode,init", PAIRS)
def test_trades_step_is_the_references(mode, init):
    ours, verbatim, lean = Net(), Net(), Net()
    our_step(ours, dict(type="trades", beta=BETA, **attack_settings(mode, init, TRADES)), seed=3)
    reference_trades_step(verbatim, mode, init, seed=3)
    reference_trades_step(lean, mode, init, seed=3, redundant=False)
    assert_same(ours, verbatim, buffers=False)
    assert_same(ours, lean)


@pytest.mark.parametrize("mode,init", [("eval", "normal"), ("train", "uniform")])
def test_mart_step_is_the_references(mode, init):
    ours, reference = Net(), Net()
    our_step(ours, dict(type="mart", beta=BETA, **attack_settings(mode, init, TRADES)), seed=4)
    reference_mart_step(reference, mode, init, seed=4)
    assert_same(ours, reference)


@pytest.mark.parametrize("mode,init", [("eval", "normal"), ("train", "none")])
def test_rslad_step_is_the_references(mode, init):
    teacher = FrozenAdversary(Net(seed=9))
    ours, reference = Net(), Net()
    our_step(ours, dict(type="rslad", **attack_settings(mode, init, TRADES)), seed=5, teacher=teacher)
    reference_rslad_step(reference, teacher, mode, init, seed=5)
    assert_same(ours, reference)


@pytest.mark.parametrize("mode,init", [("train", "uniform"), ("eval", "none")])
def test_nat_with_weight_zero_is_pgd_at_on_clean_and_adversarial_images(mode, init):
    """NAT's X' is PGD-AT's attack under every switch: NAT vs PGD-AT is the nasty term only."""
    nat, at = Net(), Net()
    context = dict(adversary=FrozenAdversary(Net(seed=9)), nasty_loss=NastyLoss(0.0, 4.0))
    our_step(nat, dict(type="nat", **attack_settings(mode, init, AT)), seed=6, **context)
    our_step(at, dict(type="pgd_at", include_clean=True, **attack_settings(mode, init, AT)), seed=6)
    assert_same(nat, at)


def test_at_awp_step_is_the_references():
    ours, verbatim, lean = Net(), Net(), Net()
    our_step(ours, dict(type="pgd_at_awp", gamma=0.01, eps=EPS, alpha=ALPHA, steps=STEPS), seed=7)
    reference_pgd_at_step(verbatim, "train", "uniform", seed=7, awp_gamma=0.01)
    reference_pgd_at_step(lean, "train", "uniform", seed=7, redundant=False, awp_gamma=0.01)
    assert_same(ours, verbatim, buffers=False)
    assert_same(ours, lean)  # the attack's BN updates reach the model although it ran on the proxy


def test_trades_awp_step_is_the_references():
    """Parameters only: its loop runs the adversarial forward before the clean ones (TRADES' code
    and ours: clean first), so the BN statistics' last updates come in another order."""
    ours, reference = Net(), Net()
    our_step(ours, dict(type="trades_awp", gamma=5e-3, beta=BETA, eps=EPS, alpha=ALPHA, steps=STEPS), seed=8)
    reference_trades_step(reference, "eval", "normal", seed=8, awp_gamma=5e-3)
    assert_same(ours, reference, buffers=False)


def test_trades_awp_config_warms_up_as_many_epochs_as_the_reference():
    """train_trades_cifar.py: ``for epoch in range(1, epochs + 1)``, AWP from ``epoch >= 10``."""
    warmup = Config.fromfile("configs/cls/cifar10_preact18_trades_awp.py").model.method.warmup
    reference_without = sum(1 for epoch in range(1, 101) if not epoch >= 10)
    ours_without = sum(1 for epoch in range(100) if epoch < warmup)  # awp.py: 0-based epoch < warmup
    assert ours_without == reference_without == 9


@pytest.mark.parametrize("cfg,message", [
    (dict(type="pgd_at", attack_mode="test"), "method pgd_at: attack_mode='test'; expected one of train, eval"),
    (dict(type="trades", attack_init="zero"),
     "method trades: attack_init='zero'; expected one of uniform, normal, none"),
])
def test_bad_switches_are_one_line(cfg, message):
    from nat_tasks.core.errors import NatError
    with pytest.raises(NatError, match=f"^{message}$"):
        build_method(dict(cfg, eps=EPS, alpha=ALPHA, steps=STEPS))
