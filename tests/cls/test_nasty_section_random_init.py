"""Classification's randomly initialised adversary (nasty_section.build_untrained,
``checkpoint='random:<seed>'``): the member's architecture under the seed, and NAT trains against it."""
import torch

from nat_tasks.cls.training.adversarial_classifier import AdversarialClassifier
from nat_tasks.cls.models.architectures import build_classifier
from nat_tasks.cls.training.nasty_section import build_adversary
from nat_tasks.core.nasty_config import parse_nasty


def test_classification_builds_the_architecture_under_the_seed_and_nat_trains_against_it():
    info = dict(num_classes=10, in_channels=3, image_size=32)
    nasty = dict(weight=0.5, tau=4.0, adversary=dict(arch="small_cnn", checkpoint="random:3"))
    adversary = build_adversary(parse_nasty(nasty, member_keys=("arch",)), info)
    torch.manual_seed(3)
    by_hand = build_classifier("small_cnn", **info)
    x = torch.rand(4, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(adversary(x), by_hand.eval()(x))
    model = AdversarialClassifier("small_cnn", 10, dict(type="nat", eps=2 / 255, alpha=1 / 255, steps=1), nasty=nasty)
    losses = model(x, torch.arange(4), mode="loss")
    assert torch.isfinite(losses["loss_nasty"]) and losses["loss_nasty"] < 0
