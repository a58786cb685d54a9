"""The trainer's mmengine model (adversarial_classifier.py): NAT's adversary stays outside the
trained model, the config's ``model.nasty`` reaches the method, validation counts honestly."""
import pytest
import torch

from nat_tasks.cls import methods
from nat_tasks.cls.training.adversarial_classifier import SECTIONS, AdversarialClassifier, register_section
from nat_tasks.cls.models.architectures import build_classifier
from nat_tasks.cls.training.metric import AdversarialAccuracy
from nat_tasks.core.errors import NatError
from nat_tasks.core.sparse import changed_locations, spgd

NAT = dict(type="nat", eps=0.1, alpha=0.05, steps=1)


def make_model(method=None, **kwargs):
    return AdversarialClassifier(arch="small_cnn", num_classes=10, method=method or dict(type="vanilla"), **kwargs)


@pytest.fixture
def adversary_file(tmp_path):
    path = tmp_path / "plain.pth"
    torch.save(build_classifier("small_cnn", 10).state_dict(), path)  # a plain Classifier state_dict
    return str(path)


def test_adversary_is_invisible_to_parameters_state_dict_and_train(adversary_file):
    net = build_classifier("small_cnn", 10)
    model = make_model(NAT, nasty=dict(adversary=dict(arch="small_cnn", checkpoint=adversary_file)))
    assert len(list(model.parameters())) == len(list(net.parameters()))
    assert all(k.startswith("classifier.") for k in model.state_dict())
    model.train()
    assert not model.adversary.models[0].training


def test_model_nasty_reaches_the_method(adversary_file):
    model = make_model(NAT, nasty=dict(weight=0.5, tau=2.0, scale_by_tau2=False, adversary=dict(
        arch="small_cnn", checkpoint=adversary_file, precision="bfloat16")))
    assert model.adversary.precision == "bfloat16" and model.method.context["adversary"] is model.adversary
    loss = model.method.context["nasty_loss"]
    assert (loss.weight, loss.tau, loss.scale_by_tau2) == (0.5, 2.0, False)
    default = make_model(NAT, nasty=dict(adversary=dict(arch="small_cnn", checkpoint=adversary_file)))
    loss = default.method.context["nasty_loss"]
    assert (loss.weight, loss.tau, loss.scale_by_tau2) == (0.006, 4.0, True)  # NastyLoss's defaults


@pytest.mark.parametrize("kwargs,message", [
    (dict(adversary=dict(arch="small_cnn", checkpoint="a.pth")), "model.adversary was moved: use model.nasty.adversary"),
    (dict(adversary_precision="bfloat16"),
     "model.adversary_precision was moved: use model.nasty.adversary.precision"),
    (dict(method=dict(NAT, w=0.006)), "model.method.w was moved: use model.nasty.weight"),
    (dict(method=dict(NAT, tau=4.0)), "model.method.tau was moved: use model.nasty.tau"),
    (dict(method=dict(NAT, scale_by_tau2=True)), "model.method.scale_by_tau2 was moved: use model.nasty.scale_by_tau2"),
    (dict(nasty=dict(w=0.1, adversary=dict(arch="small_cnn", checkpoint="a.pth"))),
     "model.nasty.w was renamed: use model.nasty.weight"),
    (dict(method=NAT), "method nat needs model.nasty="),
    (dict(colour="blue"), "unknown key model.colour"),
])
def test_old_and_unknown_keys_are_one_line(kwargs, message):
    with pytest.raises(NatError) as err:
        make_model(**kwargs)
    assert message in str(err.value) and "\n" not in str(err.value)


class Counter(torch.nn.Module):
    """A stateful context object: counts the examples each index was trained on."""

    def __init__(self, size):
        super().__init__()
        self.register_buffer("seen", torch.zeros(size))


@pytest.fixture
def counting_section():
    """``model.counter=dict(size=N)`` offering ``counter`` to a method ``counting`` (one test)."""
    methods.register_context("counter", "model.counter=dict(size=...)")
    register_section("counter", lambda section, data_info: dict(counter=Counter(section["size"])))

    @methods.register_method("counting")
    def counting(model, x, y, *, counter, index):
        counter.seen[index] += 1
        return dict(loss_ce=torch.nn.functional.cross_entropy(model(x), y))
    yield
    del SECTIONS["counter"], methods.METHODS["counting"], methods.registry.CONTEXT_SECTIONS["counter"]


def test_a_section_offers_its_context_and_its_state_is_checkpointed(counting_section):
    model = make_model(dict(type="counting"), counter=dict(size=5))
    x, y = torch.rand(2, 3, 32, 32), torch.tensor([1, 2])
    model(x, y, index=torch.tensor([1, 3]), mode="loss")
    assert model.state_dict()["method_state.counter.seen"].tolist() == [0, 1, 0, 1, 0]
    fresh = make_model(dict(type="counting"), counter=dict(size=5))
    fresh.load_state_dict(model.state_dict())  # what --resume does
    assert fresh.method.context["counter"].seen.tolist() == [0, 1, 0, 1, 0]
    with pytest.raises(NatError, match=r"method counting needs model.counter=dict\(size=...\)"):
        make_model(dict(type="counting"))


def test_nan_loss_is_a_clear_error():
    model = make_model()
    with pytest.raises(NatError, match="training diverged"):
        model.parse_losses(dict(loss_ce=torch.tensor(float("nan")), loss_nasty=torch.tensor(0.0)))


class WrongCleanRightPerturbed(torch.nn.Module):
    """Class 1 for the exact clean image, class 0 for any perturbed one; no input gradient."""

    def __init__(self, clean):
        super().__init__()
        self.clean = clean

    def forward(self, x):
        moved = (x != self.clean).flatten(1).any(dim=1).float()
        return torch.stack([moved, 1 - moved], dim=1) + 0 * x.flatten(1).sum(dim=1, keepdim=True)


def test_robust_accuracy_requires_clean_correctness():
    """RobustBench: an example misclassified clean is broken even if the attack leaves it correct."""
    model = make_model(val_attack=dict(eps=0.1, alpha=0.05, steps=2, n_examples=4))
    x = torch.full((4, 3, 32, 32), 0.5)
    model.classifier = WrongCleanRightPerturbed(x[0])
    model.eval()  # starts the run's attack budget
    samples = model(x, torch.zeros(4, dtype=torch.long), mode="predict")
    assert not any(s["correct"] for s in samples) and all(s["adv_correct"] for s in samples)
    metric = AdversarialAccuracy()
    metric.process({}, samples)
    assert metric.compute_metrics(metric.results) == dict(clean_acc=0.0, robust_acc=0.0)


def test_validation_attacks_the_first_n_examples_of_each_run():
    model = make_model(val_attack=dict(eps=0.1, alpha=0.05, steps=1, n_examples=3))
    x, y = torch.rand(2, 3, 32, 32), torch.zeros(2, dtype=torch.long)
    model.eval()
    first, second = model(x, y, mode="predict"), model(x, y, mode="predict")
    assert [s["adv_correct"] is None for s in first + second] == [False, False, False, True]
    model.train()
    model.eval()  # a new validation run: the budget starts afresh
    assert all(s["adv_correct"] is not None for s in model(x, y, mode="predict"))


def test_an_l0_validation_attack_is_spgd_at_k():
    model = make_model(val_attack=dict(threat="l0", k=3, steps=5, n_examples=4))
    torch.manual_seed(0)
    x, y = torch.rand(4, 3, 32, 32), torch.randint(0, 10, (4,))
    model.eval()
    torch.manual_seed(1)
    flags = [s["adv_correct"] for s in model(x, y, mode="predict")]
    torch.manual_seed(1)
    x_adv = spgd(model.classifier, x, y, k=3, steps=5)
    assert changed_locations(x_adv, x).max() <= 3
    with torch.no_grad():
        assert flags == (model.classifier(x_adv).argmax(dim=1) == y).tolist()


@pytest.mark.parametrize("val_attack,message", [
    (dict(threat="l0", steps=5), "needs k (pixel locations)"),
    (dict(threat="l0", k=2000), "k=2000 pixels is outside [1, 1024]"),
    (dict(threat="l2"), "must be 'linf' or 'l0'"),
    (dict(eps=2.0), "val_attack eps"),
])
def test_bad_validation_attacks_are_one_line(val_attack, message):
    with pytest.raises(NatError) as err:
        make_model(val_attack=val_attack)
    assert message in str(err.value) and "\n" not in str(err.value)
