"""Each training method's loss against its formula on known numbers, and its attack's mode."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nat_tasks.cls.models.architectures import build_classifier
from nat_tasks.cls.methods import METHODS, build_method, register_method
from nat_tasks.core.adversary import FrozenAdversary
from nat_tasks.core.attacks import pgd, projected_gradient_ascent
from nat_tasks.core.errors import NatError
from nat_tasks.core.nasty import NastyLoss
from .train_helpers import learnable_images


def linear(weight, bias):
    layer = nn.Linear(len(weight[0]), len(weight))
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(weight))
        layer.bias.copy_(torch.tensor(bias))
    return nn.Sequential(nn.Flatten(), layer)


TARGET_W = [[1.0, -2.0, 0.5, 0.0], [0.0, 1.0, -1.0, 2.0], [-1.0, 0.5, 1.5, -0.5]]
ADVERSARY_W = [[0.5, 0.5, 0.0, -1.0], [-1.0, 0.0, 1.0, 1.0], [0.0, -0.5, 0.5, 0.5]]
X = torch.tensor([[[[0.1, 0.9], [0.4, 0.6]]], [[[0.8, 0.2], [0.3, 0.7]]], [[[0.5, 0.5], [0.0, 1.0]]]])
Y = torch.tensor([0, 2, 1])


def target():
    return linear(TARGET_W, [0.1, -0.2, 0.0])


def adversary():
    return FrozenAdversary(linear(ADVERSARY_W, [0.0, 0.3, -0.1]))


def nasty(adv=None, **loss):
    """What ``model.nasty`` gives a method: its adversary and its ``NastyLoss`` (NAT's defaults)."""
    return dict(adversary=adv if adv is not None else adversary(), nasty_loss=NastyLoss(**loss))


def log_softmax(z):
    """Written out (not F.log_softmax) so the formula is checked independently."""
    return z - torch.log(torch.exp(z).sum(dim=1, keepdim=True))


def ce(logits, y):
    return -log_softmax(logits)[torch.arange(len(y)), y]


def kl(p_logits, q_logits, tau):
    log_p, log_q = log_softmax(p_logits / tau), log_softmax(q_logits / tau)
    return (log_p.exp() * (log_p - log_q)).sum(dim=1)


def test_vanilla_is_the_mean_cross_entropy():
    model = target()
    terms = build_method(dict(type="vanilla"))(model, X, Y)
    # logits of sample 0: W @ [.1,.9,.4,.6] + b = [-1.4, 1.5, 0.65]; CE = logsumexp - z_0
    z0 = torch.tensor([-1.4, 1.5, 0.65])
    assert model(X)[0].tolist() == pytest.approx(z0.tolist(), abs=1e-6)
    assert ce(model(X), Y)[0].item() == pytest.approx(math.log(z0.exp().sum().item()) + 1.4, abs=1e-5)
    assert terms["loss_ce"].item() == pytest.approx(ce(model(X), Y).mean().item(), abs=1e-6)


@pytest.mark.parametrize("include_clean", [False, True])
def test_pgd_at_is_cross_entropy_on_pgd_examples(include_clean):
    model, settings = target(), dict(eps=0.1, alpha=0.05, steps=3)
    torch.manual_seed(1)
    terms = build_method(dict(type="pgd_at", include_clean=include_clean, **settings))(model, X, Y)
    torch.manual_seed(1)
    x_adv = pgd(model.eval(), X, Y, random_start=True, **settings)
    assert (x_adv - X).abs().max() <= 0.1 + 1e-6 and not torch.equal(x_adv, X)
    if include_clean:  # mean over the 2B samples of X ∪ X'
        assert terms["loss_ce"].item() == pytest.approx(
            (ce(model(X), Y).sum() + ce(model(x_adv), Y).sum()).item() / 6, abs=1e-6)
    else:
        assert terms["loss_ce_adv"].item() == pytest.approx(ce(model(x_adv), Y).mean().item(), abs=1e-6)


def test_trades_is_ce_plus_beta_kl_from_clean_to_adversarial():
    model, settings = target(), dict(eps=0.1, alpha=0.05, steps=3)
    torch.manual_seed(2)
    terms = build_method(dict(type="trades", beta=6.0, **settings))(model, X, Y)
    torch.manual_seed(2)
    p_clean = model(X).softmax(dim=1).detach()
    x_adv = projected_gradient_ascent(
        lambda xa: (p_clean * (p_clean.log() - log_softmax(model(xa)))).sum(dim=1),
        X, eps=0.1, alpha=0.05, steps=3, random_start=True)
    assert terms["loss_ce"].item() == pytest.approx(ce(model(X), Y).mean().item(), abs=1e-6)
    expected_kl = kl(model(X), model(x_adv), tau=1.0).mean().item()  # KL(f(x) || f(x')), batch mean
    assert expected_kl > 0
    assert terms["loss_trades_kl"].item() == pytest.approx(6.0 * expected_kl, abs=1e-6)


@pytest.mark.parametrize("w,tau,scale_by_tau2", [(0.006, 4.0, True), (0.5, 2.0, False)])
def test_nat_is_eq5_averaged_over_clean_and_adversarial(w, tau, scale_by_tau2):
    """loss = (1/2B) Σ_{X ∪ X'} [CE - w tau^2 KL(softmax(t/tau) || softmax(a/tau))]."""
    model, adv, settings = target(), adversary(), dict(eps=0.1, alpha=0.05, steps=3)
    torch.manual_seed(3)
    terms = build_method(dict(type="nat", **settings),
                         **nasty(adv, weight=w, tau=tau, scale_by_tau2=scale_by_tau2))(model, X, Y)
    torch.manual_seed(3)
    x_adv = pgd(model.eval(), X, Y, random_start=True, **settings)
    both = torch.cat([X, x_adv])
    ce_all = ce(model(both), torch.cat([Y, Y]))
    kl_all = kl(model(both), adv(both), tau)
    scale = tau ** 2 if scale_by_tau2 else 1.0
    assert terms["loss_ce"].item() == pytest.approx(ce_all.sum().item() / 6, abs=1e-6)
    assert terms["loss_nasty"].item() == pytest.approx(-w * scale * kl_all.sum().item() / 6, abs=1e-7)
    assert terms["ce_clean"].item() == pytest.approx(ce_all[:3].mean().item(), abs=1e-6)
    assert terms["ce_adv"].item() == pytest.approx(ce_all[3:].mean().item(), abs=1e-6)
    assert abs(kl_all[:3].sum().item() - kl_all[3:].sum().item()) > 1e-4  # the X' half really counts


def test_nat_known_numbers_without_attack():
    """eps = 0 (X' = X): one sample, logits by hand."""
    model = linear([[1.0, 0, 0, 0], [0, 0, 0, 0]], [0.0, 0.0])
    adv = FrozenAdversary(linear([[0, 0, 0, 0], [0, 0, 0, 0]], [0.0, 0.0]))
    x, y = torch.tensor([[[[2.0, 0.0], [0.0, 0.0]]]]).clamp(0, 1), torch.tensor([0])  # x = [1, 0, 0, 0]
    terms = build_method(dict(type="nat", eps=0.0, alpha=0.1, steps=1), **nasty(adv, weight=0.5, tau=1.0))(model, x, y)
    p = 1 / (1 + math.exp(-1))  # target softmax([1, 0]); adversary is uniform
    assert terms["loss_ce"].item() == pytest.approx(-math.log(p), abs=1e-6)
    expected_kl = p * math.log(p / 0.5) + (1 - p) * math.log((1 - p) / 0.5)
    assert terms["loss_nasty"].item() == pytest.approx(-0.5 * expected_kl, abs=1e-6)


class ModeRecorder(nn.Module):
    """Records the train/eval mode of every forward; BN with cumulative stats counts train forwards."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
        self.bn = nn.BatchNorm1d(3, momentum=None)
        self.modes = []

    def forward(self, x):
        self.modes.append(self.training)
        return self.bn(self.net(x))


@pytest.mark.parametrize("name,switch,train_forwards,eval_forwards", [
    ("vanilla", {}, 1, 0),
    ("pgd_at", {}, 3 + 1, 0), ("nat", {}, 3 + 1, 0),  # robust_overfitting: the attack in train mode
    ("pgd_at", dict(attack_mode="eval"), 1, 3), ("nat", dict(attack_mode="eval"), 1, 3),
    ("trades", {}, 2, 1 + 3),  # TRADES' code: eval mode (the clean prediction + 3 steps)
    ("trades", dict(attack_mode="train"), 2 + 1 + 3, 0)])
def test_the_attack_runs_in_its_mode_updates_bn_only_in_train_mode_and_mode_is_restored(
        name, switch, train_forwards, eval_forwards):
    model = ModeRecorder().train()
    cfg = dict(type=name) if name == "vanilla" else dict(type=name, eps=0.1, alpha=0.05, steps=3, **switch)
    build_method(cfg, **nasty())(model, X, Y)
    assert model.training
    assert model.modes.count(True) == train_forwards and model.modes.count(False) == eval_forwards
    assert int(model.bn.num_batches_tracked) == train_forwards  # every train-mode forward moved BN stats


def test_adversary_gets_no_gradient():
    model, adv = target(), adversary()
    terms = build_method(dict(type="nat", eps=0.1, alpha=0.05, steps=2), **nasty(adv, weight=0.1))(model, X, Y)
    (terms["loss_ce"] + terms["loss_nasty"]).backward()
    assert all(p.grad is not None for p in model.parameters())
    assert all(p.grad is None and not p.requires_grad for m in adv.models for p in m.parameters())


@pytest.mark.parametrize("cfg,message", [
    (dict(type="no_such_method"), "unknown method 'no_such_method'"),
    (dict(type="pgd_at", eps=1.5, alpha=0.1, steps=2), "eps=1.5 is outside [0,"),
    (dict(type="pgd_at", eps=-0.1, alpha=0.1, steps=2), "eps=-0.1 is outside [0,"),
    (dict(type="pgd_at", eps=0.1, alpha=0.1, steps=0), "steps must be a positive integer"),
    (dict(type="pgd_at", eps=0.1), "missing a required argument"),
    (dict(type="vanilla", beta=6), "unexpected keyword argument 'beta'"),
])
def test_bad_method_configs_fail_clearly(cfg, message):
    with pytest.raises(NatError) as err:
        build_method(cfg)
    assert message in str(err.value)


@pytest.mark.parametrize("given", [{}, dict(adversary="an adversary"), dict(nasty_loss=NastyLoss())])
def test_nat_without_model_nasty_fails_clearly(given):
    with pytest.raises(NatError) as err:
        build_method(dict(type="nat", eps=0.1, alpha=0.05, steps=2), **given)
    assert str(err.value) == ("method nat needs model.nasty=dict(weight=..., tau=..., "
                              "adversary=dict(arch=..., checkpoint=...))")


def test_methods_without_a_nasty_term_ignore_it():
    method = build_method(dict(type="pgd_at", eps=0.1, alpha=0.05, steps=2), **nasty())
    assert method.context == {}


@pytest.mark.parametrize("name", ["vanilla", "pgd_at", "trades", "nat"])
def test_a_few_steps_lower_the_loss(name):
    torch.manual_seed(0)
    images, labels = learnable_images(20, seed=0)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    y = torch.tensor(labels)
    model = build_classifier("small_cnn", 10, in_channels=3, image_size=32)
    adv = FrozenAdversary(build_classifier("small_cnn", 10, in_channels=3, image_size=32))  # random init (Table 8)
    cfg = dict(type=name) if name == "vanilla" else dict(type=name, eps=2 / 255, alpha=1 / 255, steps=2)
    method = build_method(cfg, **nasty(adv))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)

    def total():
        return sum(v for k, v in method(model, x, y).items() if "loss" in k)

    first = total().item()
    for _ in range(8):
        optimizer.zero_grad()
        total().backward()
        optimizer.step()
    assert total().item() < 0.8 * first


@pytest.fixture
def indexed_method():
    """A method that takes the batch's ``index`` (as per-example state does), registered for one test."""
    @register_method("indexed_for_test")
    def indexed(model, x, y, *, index):
        return dict(loss_ce=F.cross_entropy(model(x), y), index_seen=index.float().sum())
    yield "indexed_for_test"
    del METHODS["indexed_for_test"]


def test_a_method_that_declares_index_gets_the_batch_index(indexed_method):
    method = build_method(dict(type=indexed_method))
    assert method.batch_keys == ("index",)
    assert method(target(), X, Y, index=torch.tensor([4, 5, 6]))["index_seen"].item() == 15
    with pytest.raises(NatError, match="needs the batch's 'index'"):
        method(target(), X, Y)
    # methods that do not declare it never see it
    assert build_method(dict(type="vanilla"))(target(), X, Y, index=torch.tensor([1, 2, 3])).keys() == {"loss_ce"}
