"""AWP around a method: the perturbation's size and direction, its removal after the optimizer
step (inside plain loops, mmengine's trainer and its DDP wrapper), the warm-up, one attack per step."""
import copy
import os

import pytest
import torch
import torch.nn.functional as F
from mmengine.logging import MessageHub
from torch import nn

from nat_tasks.cls.methods import METHODS, build_method
from nat_tasks.cls.methods.awp import perturbed_weights, register_awp, state_of
from nat_tasks.core.attacks import pgd
from nat_tasks.core.errors import NatError

from .test_methods import X, Y, nasty, target
from .train_helpers import write_config

ATTACK = dict(eps=0.1, alpha=0.05, steps=3)


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture(autouse=True)
def epoch_zero(request):
    """A message hub of our own at epoch 0, the current one during the test (another test's runner
    may have left a later epoch); removed afterwards, so the previous one is current again."""
    name = f"test_awp::{request.node.name}"
    hub = MessageHub.get_instance(name)
    hub.update_info("epoch", 0)
    yield hub
    MessageHub._instance_dict.pop(name, None)


class Net(nn.Module):
    """Conv + BN + linear: weights AWP perturbs (conv, linear) and ones it must not (BN, biases)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(1, 2, 2)
        self.bn = nn.BatchNorm2d(2)
        self.fc = nn.Linear(2, 3)

    def forward(self, x):
        return self.fc(F.relu(self.bn(self.conv(x))).flatten(1))


def expected_perturbation(model, base, gamma, seed, **settings):
    """v of an independent computation: gradient of the base loss at w on a copy, on the examples
    the base crafts on w with the same random numbers, scaled to gamma ||w_l|| per layer."""
    proxy = copy.deepcopy(model)
    torch.manual_seed(seed)
    loss = sum(v for k, v in METHODS[base](proxy, X, Y, **settings).items() if "loss" in k)
    names = [n for n, p in proxy.named_parameters() if p.dim() > 1 and "weight" in n]
    grads = torch.autograd.grad(loss, [dict(proxy.named_parameters())[n] for n in names])
    weights = dict(model.named_parameters())
    return {n: gamma * weights[n].norm() * g / g.norm() for n, g in zip(names, grads)}


def test_perturbation_is_layerwise_relative_along_the_base_loss_gradient():
    model, gamma = Net().train(), 0.05
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    expected = expected_perturbation(model, "pgd_at", gamma, seed=4, **ATTACK)
    torch.manual_seed(4)
    build_method(dict(type="pgd_at_awp", gamma=gamma, **ATTACK))(model, X, Y)
    assert set(expected) == {"conv.weight", "fc.weight"}
    for name, p in model.named_parameters():
        delta = p.detach() - before[name]
        if name in expected:  # ||v_l|| = gamma ||w_l||, along the gradient of the loss at w
            assert delta.norm().item() == pytest.approx(gamma * before[name].norm().item(), rel=1e-4)
            assert torch.allclose(delta, expected[name], atol=1e-6)
        else:  # BN affine parameters and biases stay
            assert torch.equal(delta, torch.zeros_like(delta)), name
    state_of(model).remove()
    assert all(torch.allclose(p, before[n], atol=1e-7) for n, p in model.named_parameters())


def sgd(model):
    return torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=0.05)


def train_step(model, method, optimizer, seed):
    torch.manual_seed(seed)
    optimizer.zero_grad()
    sum(v for k, v in method(model, X, Y).items() if "loss" in k).backward()
    optimizer.step()


def test_after_the_optimizer_step_the_perturbation_is_removed():
    """w <- (w + v) - lr * SGD-direction(grad L(w + v), weight decay on w + v) - v."""
    model, gamma = Net().train(), 0.05
    reference = copy.deepcopy(model)
    expected_v = expected_perturbation(model, "pgd_at", gamma, seed=5, **ATTACK)
    train_step(model, build_method(dict(type="pgd_at_awp", gamma=gamma, **ATTACK)), sgd(model), seed=5)
    # By hand: the examples crafted on w (same random start; in train mode, as pgd_at's reference,
    # so BN statistics move), the loss at w + v, one SGD step, minus v.
    torch.manual_seed(5)
    x_adv = pgd(reference, X, Y, random_start=True, **ATTACK)
    with torch.no_grad():
        for name, p in reference.named_parameters():
            p.add_(expected_v.get(name, torch.zeros_like(p)))
    optimizer = sgd(reference)
    F.cross_entropy(reference(x_adv), Y).backward()
    optimizer.step()
    with torch.no_grad():
        for name, p in reference.named_parameters():
            p.sub_(expected_v.get(name, torch.zeros_like(p)))
    for (name, p), q in zip(model.named_parameters(), reference.parameters()):
        assert torch.allclose(p, q, atol=1e-6), name
    # BN statistics: the attack's 3 forwards (on the proxy, handed to the model) and one at w + v
    assert int(model.bn.num_batches_tracked) == int(reference.bn.num_batches_tracked) == 4
    assert torch.allclose(model.bn.running_mean, reference.bn.running_mean, atol=1e-6)
    assert torch.allclose(model.bn.running_var, reference.bn.running_var, atol=1e-6)
    assert not state_of(model).applied


def test_warmup_epochs_train_the_base_method_alone(epoch_zero):
    plain, warm = Net().train(), Net().train()
    awp = build_method(dict(type="pgd_at_awp", gamma=0.05, warmup=2, **ATTACK))
    epoch_zero.update_info("epoch", 1)  # still warming up: the same step as pgd_at
    train_step(plain, build_method(dict(type="pgd_at", **ATTACK)), sgd(plain), seed=6)
    train_step(warm, awp, sgd(warm), seed=6)
    assert all(torch.equal(p, q) for p, q in zip(plain.parameters(), warm.parameters()))
    epoch_zero.update_info("epoch", 2)  # from here on the weights are perturbed
    before = [p.detach().clone() for p in perturbed_weights(warm)]
    awp(warm, X, Y)
    assert all(not torch.equal(p, b) for p, b in zip(perturbed_weights(warm), before))


def test_a_step_that_did_not_happen_does_not_pile_up_perturbations():
    """No optimizer step between two forwards (a skipped float16 step, gradient accumulation):
    the second forward removes the first perturbation before adding its own."""
    model, gamma = Net().train(), 0.05
    method = build_method(dict(type="pgd_at_awp", gamma=gamma, **ATTACK))
    before = [p.detach().clone() for p in perturbed_weights(model)]
    method(model, X, Y)
    method(model, X, Y)
    for p, b in zip(perturbed_weights(model), before):
        assert (p - b).norm().item() == pytest.approx(gamma * b.norm().item(), rel=1e-4)
    other = torch.optim.SGD([nn.Parameter(torch.ones(1))], lr=0.1)  # an optimizer of other weights
    other.param_groups[0]["params"][0].grad = torch.ones(1)
    other.step()
    assert state_of(model).applied  # not its weights: the perturbation stays


class CountingNet(nn.Module):
    """A linear model that logs every forward (copies included): an attack step (the input needs
    a gradient, in either mode), else its mode (an eval one: e.g. TRADES' clean prediction)."""
    calls = []

    def __init__(self):
        super().__init__()
        self.net = target()

    def forward(self, x):
        CountingNet.calls.append("attack" if x.requires_grad else "train" if self.training else "eval")
        return self.net(x)


@pytest.mark.parametrize("base,train_forwards", [("pgd_at", 1), ("trades", 2), ("nat", 1), ("mart", 2)])
def test_the_attack_runs_once_and_the_loss_twice(base, train_forwards):
    CountingNet.calls = []
    settings = dict(type=f"{base}_awp", gamma=0.01, **ATTACK)
    terms = build_method(settings, **nasty())(CountingNet().train(), X, Y)
    with_awp = list(CountingNet.calls)
    CountingNet.calls = []
    build_method(dict(type=base, **ATTACK), **nasty())(CountingNet().train(), X, Y)
    assert with_awp.count("attack") == CountingNet.calls.count("attack") == 3  # the attack: once
    assert with_awp.count("train") == 2 * CountingNet.calls.count("train") == 2 * train_forwards
    assert with_awp.count("eval") == 2 * CountingNet.calls.count("eval")  # cheap no-grad ones: twice
    assert all(torch.isfinite(v) for v in terms.values())


def test_a_method_drawing_random_numbers_before_its_attack_is_replayed_faithfully():
    """at_mixup draws partners, then attacks: the perturbed run must see the proxy run's draws."""
    register_awp("at_mixup")
    try:
        model = Net().train()
        expected = expected_perturbation(model, "at_mixup", 0.05, seed=7, **ATTACK)
        torch.manual_seed(7)
        before = dict((n, p.detach().clone()) for n, p in model.named_parameters())
        build_method(dict(type="at_mixup_awp", gamma=0.05, **ATTACK))(model, X, Y)
        for name, v in expected.items():
            assert torch.allclose(dict(model.named_parameters())[name] - before[name], v, atol=1e-6)
    finally:
        del METHODS["at_mixup_awp"]


def test_a_step_consumes_the_random_numbers_of_the_base_method():
    """Else every step would redraw the same PGD random start."""
    torch.manual_seed(8)
    build_method(dict(type="pgd_at", **ATTACK))(Net().train(), X, Y)
    plain = torch.get_rng_state()
    torch.manual_seed(8)
    build_method(dict(type="pgd_at_awp", gamma=0.05, **ATTACK))(Net().train(), X, Y)
    assert torch.equal(torch.get_rng_state(), plain)


@pytest.mark.parametrize("gamma,warmup", [(-0.1, 0), (0.01, -1), (0.01, 1.5)])
def test_bad_awp_settings_fail_clearly(gamma, warmup):
    method = build_method(dict(type="pgd_at_awp", gamma=gamma, warmup=warmup, **ATTACK))
    with pytest.raises(NatError, match="method pgd_at_awp: gamma="):
        method(Net(), X, Y)


def test_awp_takes_its_base_method_settings_and_context():
    with pytest.raises(NatError, match="method pgd_at_awp: missing a required argument: 'gamma'"):
        build_method(dict(type="pgd_at_awp", **ATTACK))
    with pytest.raises(NatError, match="method nat_awp needs model.nasty"):
        build_method(dict(type="nat_awp", gamma=0.01, **ATTACK))
    with pytest.raises(NatError, match="eps=2.0 is outside"):
        build_method(dict(type="trades_awp", gamma=0.01, eps=2, alpha=0.1, steps=1))


# ---- under DDP: two CPU processes (gloo) ---------------------------------------------------------

def _ddp_worker(rank, init_file, out_dir):
    import torch.distributed as dist
    from mmengine.model import MMDistributedDataParallel
    from mmengine.optim import OptimWrapper

    from nat_tasks.cls.training.adversarial_classifier import AdversarialClassifier

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    MessageHub.get_instance("ddp_worker").update_info("epoch", 0)
    torch.manual_seed(0)
    model = AdversarialClassifier("small_cnn", 10, dict(type="pgd_at_awp", gamma=0.05, eps=0.03, alpha=0.01,
                                                        steps=2))
    ddp = MMDistributedDataParallel(module=model)
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=0.05))
    generator = torch.Generator().manual_seed(100 + rank)  # each rank its own images
    for _ in range(2):
        data = dict(inputs=torch.rand(4, 3, 32, 32, generator=generator),
                    labels=torch.randint(0, 10, (4,), generator=generator))
        ddp.train_step(data, optim_wrapper=wrapper)
    # parameters only: BatchNorm statistics are per rank under DDP (rank 0's are broadcast)
    torch.save(dict(model.named_parameters()), os.path.join(out_dir, f"rank{rank}.pth"))
    dist.destroy_process_group()


def test_ddp_ranks_perturb_alike_and_stay_identical(tmp_path):
    """Different images per rank: without averaging the proxy gradient, v (and with weight decay on
    w + v the weights) would differ between the ranks."""
    import torch.multiprocessing as mp

    # fork: the workers inherit the imports (a spawned interpreter re-imports for ~10 s per rank)
    mp.start_processes(_ddp_worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=2, start_method="fork")
    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pth") for r in (0, 1))
    for key in rank0:
        assert torch.equal(rank0[key], rank1[key]), key


# ---- end to end: mmengine's runner (tools/train_cls.py's path, in process), NAT-AWP ---------------

def test_nat_awp_trains_an_epoch_and_mmengine_steps_remove_the_perturbation(cifar10_root, tmp_path):
    from nat_tasks.cls.models.architectures import build_classifier
    from nat_tasks.cls.training.train import build_runner, load_cls_config

    adversary = tmp_path / "adversary.pth"
    torch.save(build_classifier("small_cnn", 10).state_dict(), adversary)  # random init (Table 8)
    config = write_config(
        tmp_path / "nat_awp.py", base="cifar10_preact18_nat_awp.py", data_root=str(cifar10_root),
        model=dict(method=dict(eps=4 / 255, alpha=2 / 255, steps=1),
                   nasty=dict(adversary=dict(arch="small_cnn", checkpoint=str(adversary)))),
        train_dataloader=dict(batch_size=40), train_cfg=dict(max_epochs=1))
    runner = build_runner(load_cls_config(config, work_dir=str(tmp_path / "run")))
    runner.train()
    # No AWP call follows the last step: only the optimizer post-hook inside mmengine's
    # OptimWrapper.update_params can have removed its perturbation.
    assert runner.iter == 2 and not state_of(runner.model.classifier).applied
    assert os.path.isfile(tmp_path / "run" / "epoch_1.pth")
