"""The detector's pixel space: 0..255 images in the model's channel order.

mmdet's ``DetDataPreprocessor`` flips BGR->RGB first and then normalises with ``mean``/``std`` given
in the flipped order, so ``inputs * std + mean`` is the 0..255 image the model sees (RGB for SSD).
Attack budgets (an Linf ball, the 0..255 box) do not depend on the channel order, so attacks work
here and never flip channels back.
"""
import torch


class PixelSpace:
    def __init__(self, data_preprocessor):
        normalises = getattr(data_preprocessor, "_enable_normalize", False)
        if normalises:
            self.mean = data_preprocessor.mean.detach()
            self.std = data_preprocessor.std.detach()
        else:
            self.mean = self.std = None

    def to_pixels(self, inputs):
        if self.mean is None:
            return inputs
        return inputs * self.std.to(inputs) + self.mean.to(inputs)

    def to_inputs(self, pixels):
        if self.mean is None:
            return pixels
        return (pixels - self.mean.to(pixels)) / self.std.to(pixels)


PIXEL_BOUNDS = (0.0, 255.0)


def clamp_pixels(pixels):
    return torch.clamp(pixels, *PIXEL_BOUNDS)
