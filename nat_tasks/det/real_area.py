"""Attacks may only change an image's real pixels, never the padding of a batch.

mmdet's data preprocessor pads every image of a batch to a common size (the largest image, rounded
up to ``pad_size_divisor``); the image itself is the top-left ``img_shape`` of the tensor. A
perturbation of the padding is no perturbation of the image: it would leak budget into pixels a
deployed detector never sees (and a padded border can carry features the real image cannot).
``ascend`` runs the core engine so that the loss only ever sees the real area perturbed, and
returns the clean padding.
"""
import torch

from ..core.attacks import projected_gradient_ascent


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


def ascend(loss_fn, pixels, mask, is_success=None, **kwargs):
    """``projected_gradient_ascent`` that perturbs only ``mask`` (None: everywhere).

    The loss sees ``where(mask, adv, clean)``, so the padding has no gradient (sign and
    max-normalised steps leave it still) and the random start's noise there is undone.
    """
    if mask is None:
        return projected_gradient_ascent(loss_fn, pixels, is_success=is_success, **kwargs)
    clean = pixels.detach()

    def restrict(adv):
        return torch.where(mask, adv, clean)

    success = None if is_success is None else (lambda adv: is_success(restrict(adv)))
    adv = projected_gradient_ascent(lambda adv: loss_fn(restrict(adv)), pixels, is_success=success, **kwargs)
    return restrict(adv)
