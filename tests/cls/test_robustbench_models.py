"""RobustBench model-zoo definitions (robustbench_models.py): built without a download, weights
from a local file in the zoo's formats, [0, 1] inputs normalised once (inside the zoo model), usable
as a NAT adversary; every problem is one line."""
import pytest
import torch

from nat_tasks.cls.models.architectures import build_classifier
from nat_tasks.cls.training.nasty_section import build_adversary, nasty_spec
from nat_tasks.cls.models.weights import load_classifier_weights
from nat_tasks.core.errors import NatError

# A 2.2M-parameter WRN-40-2 that normalises inside ((x - 0.5) / 0.5, buffers mu and sigma); the
# zoo's file for it lacks those buffers (robustbench loads it non-strictly for that reason).
ARCH = "robustbench:cifar10/corruptions/Hendrycks2020AugMix_WRN"
CIFAR = dict(mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616))


@pytest.fixture(scope="module")
def zoo_file(tmp_path_factory):
    """Trained-looking weights saved as the zoo ships them: under 'state_dict', DDP's 'module.'
    prefix, without the normalisation buffers; in RobustBench's folder layout."""
    torch.manual_seed(1)
    source = build_classifier(ARCH, 10).net
    with torch.no_grad():
        for p in source.parameters():
            p.add_(0.01 * torch.randn_like(p))
    state = {f"module.{k}": v for k, v in source.state_dict().items() if k not in ("mu", "sigma")}
    path = tmp_path_factory.mktemp("models") / "cifar10" / "corruptions" / "Hendrycks2020AugMix_WRN.pt"
    path.parent.mkdir(parents=True)
    torch.save(dict(state_dict=state), path)
    return path, source


def test_zoo_weights_load_and_inputs_are_normalised_once(zoo_file):
    path, source = zoo_file
    model = load_classifier_weights(build_classifier(ARCH, 10, **CIFAR), path).eval()
    for (name, p), q in zip(model.net.state_dict().items(), source.state_dict().values()):
        assert torch.equal(p, q), name
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        out = model(x)
        # the config's CIFAR mean/std are not applied on top: the zoo model's own (x - 0.5) / 0.5 is
        by_hand = super(type(model.net), model.net).forward((x - 0.5) / 0.5)
    assert torch.allclose(out, by_hand, atol=1e-5)


def test_a_zoo_model_is_a_nat_adversary(zoo_file):
    path, source = zoo_file
    spec = nasty_spec(dict(nasty=dict(adversary=dict(arch=ARCH, checkpoint=str(path)))))
    adversary = build_adversary(spec, dict(num_classes=10, in_channels=3, image_size=32, **CIFAR))
    x = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(adversary(x), source.eval()(x), atol=1e-5)


def test_our_own_checkpoint_of_a_zoo_model_loads_too(zoo_file, tmp_path):
    path, _ = zoo_file
    model = load_classifier_weights(build_classifier(ARCH, 10), path)
    torch.save(dict(state_dict={f"classifier.{k}": v for k, v in model.state_dict().items()}), tmp_path / "ours.pth")
    again = load_classifier_weights(build_classifier(ARCH, 10), tmp_path / "ours.pth")
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), model.state_dict().values()))


def test_problems_are_one_line(zoo_file, tmp_path):
    with pytest.raises(NatError, match=r"put the model zoo's Hendrycks2020AugMix_WRN.pt there.*"
                                       r"<models_dir>/cifar10/corruptions/Hendrycks2020AugMix_WRN.pt"):
        load_classifier_weights(build_classifier(ARCH, 10), tmp_path / "missing.pt")
    torch.save({"conv1.weight": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(NatError, match="does not fit robustbench:cifar10/corruptions/Hendrycks2020AugMix_WRN"):
        load_classifier_weights(build_classifier(ARCH, 10), tmp_path / "other.pt")
    for arch, num_classes, message in [
            ("robustbench:cifar10/Linf", 10, "expected robustbench:<dataset>/<threat_model>/<name>"),
            ("robustbench:cifar10/Linf/NoSuchModel", 10, "no cifar10/Linf model 'NoSuchModel'"),
            ("robustbench:mnist/Linf/Standard", 10, "no mnist/Linf models"),
            ("robustbench:cifar10/Linf/Chen2020Adversarial", 10, "ensemble of several zoo files"),
            ("robustbench:imagenet/Linf/Standard_R50", 1000, "downloads pretrained weights"),
            (ARCH, 100, "predicts 10 classes of RGB images, but the config has 100 classes")]:
        with pytest.raises(NatError, match=message):
            build_classifier(arch, num_classes)


def test_a_zoo_definition_that_reaches_torch_hub_is_refused_and_fetches_nothing(monkeypatch):
    """A constructor whose source does not say ``pretrained=True`` but downloads anyway (through
    torch.hub, as torchvision's and timm's weight loaders do) stops at the first download."""
    from robustbench.model_zoo.enums import BenchmarkDataset, ThreatModel
    from robustbench.model_zoo.models import model_dicts

    def fetching():
        torch.hub.download_url_to_file("https://example.invalid/w.pth", "/nonexistent/w.pth")

    entries = model_dicts[BenchmarkDataset("cifar10")][ThreatModel("Linf")]
    monkeypatch.setitem(entries, "Fetching2099", dict(model=fetching, gdrive_id="x"))
    real = torch.hub.download_url_to_file
    with pytest.raises(NatError) as err:
        build_classifier("robustbench:cifar10/Linf/Fetching2099", 10)
    assert "downloads https://example.invalid/w.pth when it is built" in str(err.value)
    assert torch.hub.download_url_to_file is real  # restored after the build
