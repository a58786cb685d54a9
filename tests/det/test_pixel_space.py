"""Pixel space: the 0..255 RGB image the model sees, and back."""
import torch

from .conftest import build_detector
from .helpers import data_batch, preprocessed


def test_pixel_space_round_trip(tiny_config):
    from nat_tasks.det.pixel_space import PixelSpace

    detector, cfg = build_detector(tiny_config)
    batch = data_batch(cfg, 2)
    inputs, _ = preprocessed(detector, batch)
    space = PixelSpace(detector.data_preprocessor)
    raw_bgr = torch.stack(batch["inputs"]).float()
    # mmdet loads BGR; the model sees RGB: pixel space is the RGB image on 0..255.
    torch.testing.assert_close(space.to_pixels(inputs), raw_bgr[:, [2, 1, 0]], atol=1e-3, rtol=0)
    torch.testing.assert_close(space.to_inputs(space.to_pixels(inputs)), inputs, atol=1e-5, rtol=0)
