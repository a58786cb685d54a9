"""MTD: per image the candidate with the larger total loss, inside the budget and the pixel range."""
import torch

from .conftest import build_detector
from .helpers import EPS, data_batch, preprocessed, task_losses_of


class _ConstructedLosses:
    """Per-image losses of known form: cls = a_i * mean(R channel), loc = b_i * mean(G channel)."""

    def __init__(self, a, b):
        self.a, self.b = torch.tensor(a), torch.tensor(b)

    def __call__(self, pixels):
        return self.a * pixels[:, 0].mean((1, 2)), self.b * pixels[:, 1].mean((1, 2))

    def task(self, name):
        return lambda pixels: self(pixels)[0 if name == "cls" else 1]


def test_mtd_keeps_per_image_the_candidate_with_larger_total_loss():
    from nat_tasks.det.mtd import MTDConfig, craft_mtd, select_per_image

    # Image 0 is hurt most through cls (a >> b), image 1 through loc (b >> a).
    losses = _ConstructedLosses([10.0, 0.1], [0.1, 10.0])
    pixels = torch.full((2, 3, 4, 4), 100.0)
    adv, choice = craft_mtd(losses, pixels, MTDConfig(eps=EPS, alpha=EPS, steps=2, random_start=False))
    assert choice.tolist() == [0, 1]
    # cls candidate raises R by eps and leaves G; the loc candidate raises G.
    torch.testing.assert_close(adv[0, 0], torch.full((4, 4), 108.0))
    torch.testing.assert_close(adv[0, 1], torch.full((4, 4), 100.0))
    torch.testing.assert_close(adv[1, 1], torch.full((4, 4), 108.0))
    torch.testing.assert_close(adv[1, 0], torch.full((4, 4), 100.0))
    chosen, index = select_per_image(torch.arange(6.0).view(2, 3), torch.tensor([[1.0, 5, 0], [2, 0, 3]]))
    assert chosen.tolist() == [3.0, 1.0, 5.0] and index.tolist() == [1, 0, 1]


def test_mtd_stays_inside_eps_and_pixel_range(tiny_config):
    from nat_tasks.det.mtd import MTDConfig, craft_mtd
    from nat_tasks.det.pixel_space import PixelSpace

    detector, cfg = build_detector(tiny_config)
    inputs, samples = preprocessed(detector, data_batch(cfg, 2, "train_dataloader"), training=True)
    detector.train()
    space = PixelSpace(detector.data_preprocessor)
    pixels = space.to_pixels(inputs)
    adv = space.to_pixels(space.to_inputs(craft_mtd(
        task_losses_of(detector, inputs, samples), pixels, MTDConfig(eps=EPS, alpha=3, steps=3))[0]))
    assert (adv - pixels).abs().max() <= EPS + 1e-3
    assert adv.min() >= -1e-3 and adv.max() <= 255 + 1e-3
    assert (adv - pixels).abs().max() > 0.5, "mtd did not move"
    for p in detector.parameters():
        assert p.grad is None  # attacks never touch parameter gradients
