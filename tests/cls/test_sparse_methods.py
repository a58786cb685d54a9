"""The sparse (l0) training methods (methods/sparse.py) and SAT + TRADES (methods/self_adaptive.py):
each loss against its formula on a fixed tiny batch, the l0 budget of every crafted batch, one-line
errors, and Fast-LS-l0 trained end to end whose soft targets a resume restores bit for bit."""
import pytest
import torch
from torch import nn

from nat_tasks.cls.training.adversarial_classifier import AdversarialClassifier
from nat_tasks.cls.methods import build_method
from nat_tasks.cls.methods.sparse import craft_sparse
from nat_tasks.cls.training.train import load_cls_config, train
from nat_tasks.core.adversary import FrozenAdversary
from nat_tasks.core.attacks import projected_gradient_ascent
from nat_tasks.core.checkpoint import safe_load
from nat_tasks.core.errors import NatError
from nat_tasks.core.nasty import NastyLoss
from nat_tasks.core.soft_targets import SoftTargets
from nat_tasks.core.sparse import changed_locations, spgd, spgd_fast

from .train_helpers import write_cifar10, write_config

K = 2  # of the 4 x 4 = 16 pixel locations


def linear(seed, classes=3):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, classes))


MODEL, ADVERSARY = linear(0), FrozenAdversary(linear(1))
X = torch.rand(4, 3, 4, 4, generator=torch.Generator().manual_seed(2))
Y = torch.tensor([0, 2, 1, 1])
INDEX = torch.tensor([7, 0, 3, 5])


def log_softmax(z):
    """Written out (not F.log_softmax) so the formulas are checked independently."""
    return z - torch.log(torch.exp(z).sum(dim=1, keepdim=True))


def ce(logits, y):
    return -log_softmax(logits)[torch.arange(len(y)), y]


def kl(p_logits, q_logits, tau=1.0):
    log_p, log_q = log_softmax(p_logits / tau), log_softmax(q_logits / tau)
    return (log_p.exp() * (log_p - log_q)).sum(dim=1)


def soft_targets(start_epoch=0, epoch=0):
    targets = SoftTargets(3, start_epoch=start_epoch)
    targets.set_epoch(epoch)
    return targets


def run(method, seed, **context):
    torch.manual_seed(seed)
    return build_method(method, **context)(MODEL, X, Y, index=INDEX)


def crafted(seed, steps):
    torch.manual_seed(seed)
    return craft_sparse(MODEL, X, Y, k=K, steps=steps)


@pytest.mark.parametrize("steps", [1, 3])
def test_craft_sparse_is_spgd_within_the_budget(steps):
    x_adv = crafted(5, steps)
    torch.manual_seed(5)
    if steps == 1:  # the 1-step training attack
        expected = spgd_fast(MODEL, X, Y, k=K)
    else:  # the variant drawn first, then the multi-step attack on the CE with patience 10
        projected = bool(torch.randint(0, 2, (1,)).item())
        expected = spgd(MODEL, X, Y, k=K, steps=steps, projected=projected, patience=10, loss="ce")
    assert torch.equal(x_adv, expected)
    assert changed_locations(x_adv, X).max() <= K and changed_locations(x_adv, X).max() > 0
    assert 0 <= x_adv.min() and x_adv.max() <= 1


def test_early_stop_false_runs_every_iteration():
    torch.manual_seed(4)
    x_adv = craft_sparse(MODEL, X, Y, k=K, steps=3, variant="proj", early_stop=False)
    torch.manual_seed(4)
    expected = spgd(MODEL, X, Y, k=K, steps=3, projected=True, patience=10, loss="ce", early_stop=False)
    assert torch.equal(x_adv, expected)
    torch.manual_seed(4)
    assert not torch.equal(x_adv, craft_sparse(MODEL, X, Y, k=K, steps=3, variant="proj"))  # early stop differs here


@pytest.mark.parametrize("steps", [1, 3])
def test_sparse_at_is_ce_on_the_sparse_examples(steps):
    terms = run(dict(type="sparse_at", k=K, steps=steps), 6)
    x_adv = crafted(6, steps)
    assert terms["loss_ce_adv"].item() == pytest.approx(ce(MODEL(x_adv), Y).mean().item(), abs=1e-6)


def test_sparse_trades_is_ce_plus_beta_kl():
    terms = run(dict(type="sparse_trades", k=K, steps=3, beta=3.0), 7)
    x_adv = crafted(7, 3)
    assert terms["loss_ce"].item() == pytest.approx(ce(MODEL(X), Y).mean().item(), abs=1e-6)
    expected_kl = kl(MODEL(X), MODEL(x_adv)).mean().item()
    assert expected_kl > 0 and terms["loss_trades_kl"].item() == pytest.approx(3.0 * expected_kl, abs=1e-6)


def sat_formula(logits_clean, started):
    """(targets, loss) of SAT by hand: t = 0.9 one-hot + 0.1 softmax(clean) once started."""
    one_hot = torch.eye(3)[Y]
    t = 0.9 * one_hot + 0.1 * log_softmax(logits_clean).exp() if started else one_hot
    w = t.max(dim=1).values
    w = w / w.mean()
    return t, (w * -(t * log_softmax(logits_clean)).sum(dim=1)).mean()


@pytest.mark.parametrize("started", [False, True])
def test_fast_ls_l0_is_soft_label_ce_plus_beta_kl_on_one_step_examples(started):
    targets = soft_targets(start_epoch=1, epoch=int(started))
    terms = run(dict(type="fast_ls_l0", k=K, beta=2.0), 8, soft_targets=targets)
    x_adv = crafted(8, 1)
    t, loss = sat_formula(MODEL(X), started)
    assert terms["loss_sat_ce"].item() == pytest.approx(loss.item(), abs=1e-6)
    assert terms["loss_trades_kl"].item() == pytest.approx(2.0 * kl(MODEL(X), MODEL(x_adv)).mean().item(), abs=1e-6)
    if started:  # the batch's rows were written at their indices
        assert torch.allclose(targets.targets[INDEX], t, atol=1e-6) and targets.targets.shape == (8, 3)
    else:
        assert targets.targets.shape == (0, 3)


def test_sat_trades_is_soft_label_ce_plus_beta_kl_on_the_trades_attack():
    targets = soft_targets()
    terms = run(dict(type="sat_trades", eps=0.1, alpha=0.05, steps=2, beta=6.0), 9, soft_targets=targets)
    torch.manual_seed(9)
    p_clean = log_softmax(MODEL(X)).exp().detach()
    x_adv = projected_gradient_ascent(lambda xa: (p_clean * (p_clean.log() - log_softmax(MODEL(xa)))).sum(dim=1),
                                      X, eps=0.1, alpha=0.05, steps=2, random_start="normal")  # TRADES' start
    assert terms["loss_sat_ce"].item() == pytest.approx(sat_formula(MODEL(X), True)[1].item(), abs=1e-6)
    assert terms["loss_trades_kl"].item() == pytest.approx(6.0 * kl(MODEL(X), MODEL(x_adv)).mean().item(), abs=1e-6)


@pytest.mark.parametrize("name,steps", [("fast_ls_l0_nat", 1), ("sparse_trades_nat", 3)])
def test_nat_adds_the_nasty_term_over_clean_and_sparse_examples(name, steps):
    """The base method's terms unchanged plus -w tau^2 mean over X ∪ X' of KL(p_t/tau || p_a/tau)."""
    base = name[:-4]
    settings = dict(k=K, beta=3.0, **({} if steps == 1 else dict(steps=steps)))
    context = dict(soft_targets=soft_targets()) if base == "fast_ls_l0" else {}
    plain = run(dict(type=base, **settings), 10, **context)
    context = dict(soft_targets=soft_targets()) if base == "fast_ls_l0" else {}
    terms = run(dict(type=name, **settings), 10, adversary=ADVERSARY, nasty_loss=NastyLoss(weight=0.5, tau=2.0),
                **context)
    assert set(terms) == set(plain) | {"loss_nasty"}
    for key in plain:
        assert terms[key].item() == pytest.approx(plain[key].item(), abs=1e-6)
    both = torch.cat([X, crafted(10, steps)])
    expected = -0.5 * 4.0 * kl(MODEL(both), ADVERSARY(both), tau=2.0).mean()
    assert terms["loss_nasty"].item() == pytest.approx(expected.item(), abs=1e-6)


@pytest.mark.parametrize("method,message", [
    (dict(type="sparse_at", k=0), "k=0 pixels is outside [1, 16]"),
    (dict(type="sparse_trades", k=17, steps=2), "k=17 pixels is outside [1, 16]"),
    (dict(type="sparse_at", k=2, variant="sideways"), "unknown sPGD variant 'sideways'"),
])
def test_bad_budgets_and_variants_are_one_line(method, message):
    with pytest.raises(NatError) as err:
        build_method(method)(MODEL, X, Y)
    assert message in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("kwargs,message", [
    (dict(method=dict(type="sparse_l1", k=2)), "unknown method 'sparse_l1'"),
    (dict(method=dict(type="fast_ls_l0", k=2)), "method fast_ls_l0 needs model.soft_targets=dict("),
    (dict(method=dict(type="fast_ls_l0", k=2), soft_targets=dict(start_epoch=1, es=3)), "unknown key model.soft_targets.es"),
    (dict(method=dict(type="fast_ls_l0", k=2), soft_targets=dict()), "model.soft_targets needs start_epoch"),
    (dict(method=dict(type="sparse_at", k=2, steps=0)), "steps must be a positive integer"),
])
def test_bad_configs_are_one_line(kwargs, message):
    with pytest.raises(NatError) as err:
        AdversarialClassifier(arch="small_cnn", num_classes=10, **kwargs)
    assert message in str(err.value) and "\n" not in str(err.value)


def soft_rows(path):
    return safe_load(path)["state_dict"]["method_state.soft_targets.targets"]


def test_fast_ls_l0_trains_end_to_end_and_resume_restores_the_soft_targets_bit_for_bit(tmp_path):
    """start_epoch=1 through the runner: epoch 1 leaves no targets, epoch 2 writes them; a run
    stopped after epoch 2 and resumed to 3 ends with the uninterrupted run's targets and weights."""
    data = write_cifar10(str(tmp_path / "cifar"), per_batch=10)  # 30 training images: 2 steps per epoch
    path = write_config(tmp_path / "fast.py", base="cifar10_preact18_fast_ls_l0.py", data_root=data,
                        model=dict(method=dict(k=8), soft_targets=dict(start_epoch=1),
                                   val_attack=dict(k=8, steps=2, n_examples=4)),
                        default_hooks=dict(checkpoint=dict(max_keep_ckpts=-1)))

    def fit(name, epochs, resume=False):
        cfg = load_cls_config(path, work_dir=str(tmp_path / name), resume=resume,
                              cfg_options={"train_cfg.max_epochs": epochs})
        return train(cfg)

    interrupted = fit("resumed", 2)
    assert soft_rows(f"{interrupted}/epoch_1.pth").shape == (0, 10)  # before the start epoch: nothing stored
    rows = soft_rows(f"{interrupted}/epoch_2.pth")
    assert rows.shape[1] == 10 and torch.allclose(rows[rows.sum(dim=1) > 0].sum(dim=1), torch.ones(1))
    fit("resumed", 3, resume=True)
    straight = fit("straight", 3)
    resumed_state = safe_load(f"{interrupted}/epoch_3.pth")["state_dict"]
    straight_state = safe_load(f"{straight}/epoch_3.pth")["state_dict"]
    assert torch.equal(resumed_state["method_state.soft_targets.targets"],
                       straight_state["method_state.soft_targets.targets"])
    for key in straight_state:
        assert torch.equal(resumed_state[key], straight_state[key]), key
