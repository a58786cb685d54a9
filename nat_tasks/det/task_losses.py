"""A detector's per-image task losses in pixel space, against anchor targets assigned once.

``TaskLosses`` is what MTD and the evaluation attacks ascend: ``pixels -> (cls, loc)``, each (B,),
normalised like the head so they sum to its batch losses. The anchor targets (the head's own
assignment of anchors to ground truth) depend only on the ground truth and the feature-map sizes,
so they are assigned once, on first use, and every later forward pass reuses them (an attack that
never uses them, TOG's, never pays for them).
"""
from functools import cached_property

import torch

from ..core.attacks import eval_mode

TASKS = ("cls", "loc")


def probe_cls_scores(detector, adapter, inputs):
    """The head's classification maps for one image of ``inputs`` (no gradient, eval mode): their
    sizes are the feature-map sizes of the whole batch, all that anchor assignment needs."""
    with torch.no_grad(), eval_mode(detector):
        cls_scores, _ = adapter.forward(detector, inputs[:1])
    return cls_scores


class TaskLosses:
    """``pixels -> (cls, loc)`` per-image losses of ``detector`` on ``data_samples``.

    Targets are assigned on first use: from ``cls_scores`` when a forward pass of this batch
    already gave them, else from the clean forward pass of ``pixels`` if one was made
    (``clean_outputs``), else from a one-image probe of ``pixels``. ``gt_instances``: ground truth
    in input coordinates when it differs from the samples' (see ``attacks.rescaled_gt``).
    """

    def __init__(self, detector, adapter, pixel_space, data_samples, *, pixels=None, cls_scores=None,
                 gt_instances=None):
        if (pixels is None) == (cls_scores is None):
            raise ValueError("TaskLosses needs exactly one of pixels= or cls_scores=")
        self.detector, self.adapter, self.pixel_space = detector, adapter, pixel_space
        self.data_samples, self.gt_instances = data_samples, gt_instances
        self.pixels = pixels
        if cls_scores is not None:
            self.cls_scores = cls_scores

    @cached_property
    def cls_scores(self):
        """The head's classification maps of the batch (only their sizes matter to assignment)."""
        if "clean_outputs" in self.__dict__:
            return self.clean_outputs[0]
        return probe_cls_scores(self.detector, self.adapter, self.pixel_space.to_inputs(self.pixels))

    @cached_property
    def clean_outputs(self):
        """(cls_scores, bbox_preds) per level of the detector on the clean ``pixels``, no gradient:
        one forward pass of the batch, shared by whatever needs the clean prediction."""
        with torch.no_grad():
            return self.adapter.forward(self.detector, self.pixel_space.to_inputs(self.pixels))

    @cached_property
    def targets(self):
        """The head's anchor targets of the ground truth."""
        return self.assign(self.gt_instances)

    def assign(self, gt_instances=None):
        """The head's anchor targets for boxes ``gt_instances`` (one ``InstanceData`` per image,
        input coordinates; None: the samples' ground truth), e.g. the clean detections TOG attacks."""
        return self.adapter.targets(self.cls_scores, self.data_samples, gt_instances)

    def outputs(self, pixels):
        """(B, A, C) logits and (B, A, 4) box deltas of the detector on ``pixels``."""
        cls_scores, bbox_preds = self.adapter.forward(self.detector, self.pixel_space.to_inputs(pixels))
        return self.adapter.flat_logits(cls_scores), self.adapter.flat_deltas(bbox_preds)

    def ground_truth(self):
        """One ``InstanceData`` per image, in input coordinates."""
        if self.gt_instances is not None:
            return self.gt_instances
        return [sample.gt_instances for sample in self.data_samples]

    def __call__(self, pixels):
        return self.adapter.per_image_losses(*self.outputs(pixels), self.targets)

    def task(self, name):
        """``pixels -> (B,)`` the loss of one task, ``'cls'`` or ``'loc'``."""
        index = TASKS.index(name)
        return lambda pixels: self(pixels)[index]
