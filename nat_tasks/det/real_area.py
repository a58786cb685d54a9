"""Attacks may only change an image's real pixels, never the padding of a batch.

mmdet's data preprocessor pads every image of a batch to a common size (the largest image, rounded
up to ``pad_size_divisor``); the image itself is the top-left ``img_shape`` of the tensor. A
perturbation of the padding is no perturbation of the image: it would leak budget into pixels a
deployed detector never sees (and a padded border can carry features the real image cannot).
``real_area_mask`` gives the mask the core engine's ``mask=`` confines every step to.
"""
import torch


def real_area_mask(data_samples, pixels):
    """(B, 1, H, W) bool mask of each image's real pixels (``metainfo['img_shape']``) in ``pixels``,
    or None when no image of the batch is padded."""
    height, width = pixels.shape[-2:]
    shapes = [tuple(sample.metainfo.get("img_shape", (height, width))[:2]) for sample in data_samples]
    if all(shape == (height, width) for shape in shapes):
        return None
    mask = torch.zeros(pixels.shape[0], 1, height, width, dtype=torch.bool, device=pixels.device)
    for i, (h, w) in enumerate(shapes):
        mask[i, :, :h, :w] = True
    return mask
