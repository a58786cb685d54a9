"""What MTD, NAT and the detection attacks need from a dense head, behind one small interface.

A head adapter turns a head's raw outputs into per-anchor tensors and gives *per-image* losses:
MTD keeps, per image, the candidate with the larger total loss, so batch-averaged losses are not
enough. Anchor targets (assignment to ground truth) depend only on the ground truth and the
feature-map sizes, so they are computed once per batch and reused by every attack step.

Adding a head = one adapter class here and one line in ``_ADAPTERS`` (most ``AnchorHead``
subclasses need nothing: the generic adapter uses their ``loss_cls``/``loss_bbox`` modules).
"""
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from mmdet.models.dense_heads import AnchorHead, SSDHead
from mmdet.models.losses import smooth_l1_loss
from mmdet.models.task_modules.prior_generators import anchor_inside_flags
from mmdet.models.utils import unpack_gt_instances

from ..core.errors import NatError

NASTY_ANCHORS = ("sampled", "all")


@dataclass
class AnchorTargets:
    """Per-anchor training targets of a batch, anchors of all levels concatenated: (B, A, ...)."""
    anchors: torch.Tensor        # (B, A, 4)
    labels: torch.Tensor         # (B, A); background = num_classes
    label_weights: torch.Tensor  # (B, A)
    bbox_targets: torch.Tensor   # (B, A, 4)
    bbox_weights: torch.Tensor   # (B, A, 4)
    avg_factor: float            # the head's batch normaliser (number of positives for SSD/RetinaNet)
    inside: torch.Tensor         # (B, A) bool: anchors the head may use at all (its inside flags)

    def positives(self, num_classes):
        return (self.labels >= 0) & (self.labels < num_classes)


class AnchorHeadAdapter:
    """Any ``AnchorHead`` whose losses are ``loss_cls``/``loss_bbox`` modules (e.g. RetinaHead)."""

    def __init__(self, head):
        self.head = head
        self.num_classes = head.num_classes
        self.kind = "sigmoid" if head.use_sigmoid_cls else "softmax"

    # ---- outputs -------------------------------------------------------------------------------
    def forward(self, detector, inputs):
        """(cls_scores, bbox_preds) per level, as the head returns them."""
        return self.head(detector.extract_feat(inputs))

    def flat_logits(self, cls_scores):
        """(B, A, C) logits, anchors in mmdet's order (level, y, x, base anchor)."""
        batch = cls_scores[0].shape[0]
        channels = self.head.cls_out_channels
        return torch.cat([s.permute(0, 2, 3, 1).reshape(batch, -1, channels) for s in cls_scores], 1)

    def flat_deltas(self, bbox_preds):
        batch = bbox_preds[0].shape[0]
        size = self.head.bbox_coder.encode_size
        return torch.cat([b.permute(0, 2, 3, 1).reshape(batch, -1, size) for b in bbox_preds], 1)

    # ---- targets -------------------------------------------------------------------------------
    def targets(self, cls_scores, data_samples, gt_instances=None):
        """Assign anchors to ground truth with the head's own assigner/sampler (no gradient)."""
        batch_gt, batch_ignore, metas = unpack_gt_instances(data_samples)
        if gt_instances is not None:  # boxes given in input coordinates (see attacks.rescaled_gt)
            batch_gt, batch_ignore = gt_instances, None
        head = self.head
        with torch.no_grad():
            featmap_sizes = [s.shape[-2:] for s in cls_scores]
            anchor_list, valid_list = head.get_anchors(featmap_sizes, metas, device=cls_scores[0].device)
            labels, label_weights, bbox_targets, bbox_weights, avg_factor = head.get_targets(
                anchor_list, valid_list, batch_gt, metas, batch_gt_instances_ignore=batch_ignore)[:5]
            anchors = torch.stack([torch.cat(levels) for levels in anchor_list])
            # The same flags the head's get_targets applies (an anchor outside them never trains).
            inside = torch.stack([
                anchor_inside_flags(anchors[i], torch.cat(valid_list[i]), meta["img_shape"][:2],
                                    head.train_cfg.get("allowed_border", -1))
                for i, meta in enumerate(metas)])
        return AnchorTargets(
            anchors=anchors, labels=torch.cat(labels, 1), label_weights=torch.cat(label_weights, 1),
            bbox_targets=torch.cat(bbox_targets, 1), bbox_weights=torch.cat(bbox_weights, 1),
            avg_factor=float(avg_factor), inside=inside)

    # ---- losses --------------------------------------------------------------------------------
    def _decoded(self, deltas, targets):
        return self.boxes(deltas, targets.anchors) if self.head.reg_decoded_bbox else deltas

    def per_image_losses(self, logits, deltas, targets):
        """(cls, loc), each (B,), normalised like the head so they sum to its batch losses."""
        batch, num_anchors, channels = logits.shape
        loss_cls = self.head.loss_cls(
            logits.reshape(-1, channels), targets.labels.reshape(-1),
            targets.label_weights.reshape(-1), reduction_override="none")
        loss_loc = self.head.loss_bbox(
            self._decoded(deltas, targets).reshape(-1, deltas.shape[-1]),
            targets.bbox_targets.reshape(-1, targets.bbox_targets.shape[-1]),
            targets.bbox_weights.reshape(-1, targets.bbox_weights.shape[-1]), reduction_override="none")
        return (loss_cls.reshape(batch, -1).sum(1) / targets.avg_factor,
                loss_loc.reshape(batch, -1).sum(1) / targets.avg_factor)

    def per_image_loc_loss(self, deltas, targets):
        """(B,) the localisation loss alone (``per_image_losses``' second), without the cls loss."""
        loss = self.head.loss_bbox(
            self._decoded(deltas, targets).reshape(-1, deltas.shape[-1]),
            targets.bbox_targets.reshape(-1, targets.bbox_targets.shape[-1]),
            targets.bbox_weights.reshape(-1, targets.bbox_weights.shape[-1]), reduction_override="none")
        return loss.reshape(deltas.shape[0], -1).sum(1) / targets.avg_factor

    # ---- NAT and attacks -----------------------------------------------------------------------
    def nasty_mask(self, logits, targets, anchors="sampled"):
        """(B, A) bool mask of the anchors the nasty term covers.

        ``'sampled'``: exactly the anchors the head's classification loss trains on (see
        ``sampled``); anchors the assigner ignores (IoU between the negative and positive
        thresholds) are left out. ``'all'``: every anchor inside the image (the head's inside
        flags), ignored ones included.
        """
        _check_anchors_mode(anchors)
        return targets.inside if anchors == "all" else self.sampled(logits, targets)

    def sampled(self, logits, targets):
        """Anchors with a classification label weight: the sampler's positives and negatives."""
        return targets.label_weights > 0

    def objectness(self, logits):
        """(B, A) probability that an anchor holds an object (max class probability)."""
        return torch.sigmoid(logits).max(dim=-1).values

    def log_no_object(self, logits):
        """(B, A) log(1 - objectness), computed stably."""
        return F.logsigmoid(-logits.max(dim=-1).values)

    def class_scores(self, logits):
        """(B, A, num_classes) the per-class scores the head's predict thresholds and ranks."""
        return torch.sigmoid(logits)

    def anchor_ce(self, logits, labels):
        """(B, A) each anchor's cross-entropy to ``labels`` (B, A); ``num_classes`` = background
        (sigmoid heads: every class score's binary CE to 0, summed over the classes)."""
        target = F.one_hot(labels, self.num_classes + 1)[..., :self.num_classes].to(logits)
        return F.binary_cross_entropy_with_logits(logits, target, reduction="none").sum(-1)

    def score_threshold(self):
        """The score below which the head's predict drops a class score (``test_cfg.score_thr``)."""
        return float((self.head.test_cfg or {}).get("score_thr", 0.0))

    def boxes(self, deltas, anchors):
        """(B, A, 4) predicted boxes (x1, y1, x2, y2) in input pixels: ``deltas`` decoded on ``anchors``."""
        return self.head.bbox_coder.decode(anchors.reshape(-1, 4), deltas.reshape(-1, deltas.shape[-1])
                                           ).reshape(*deltas.shape[:-1], 4)


class SSDHeadAdapter(AnchorHeadAdapter):
    """SSD: softmax over ``num_classes + 1`` (background last), CE with hard-negative mining."""

    def per_image_losses(self, logits, deltas, targets):
        # SSDHead already computes its losses one image at a time: reuse it as is.
        losses = [self.head.loss_by_feat_single(
            logits[i], deltas[i], targets.anchors[i], targets.labels[i], targets.label_weights[i],
            targets.bbox_targets[i], targets.bbox_weights[i], avg_factor=targets.avg_factor)
            for i in range(logits.shape[0])]
        return (torch.cat([cls.reshape(1) for cls, _ in losses]),
                torch.stack([loc.reshape(()) for _, loc in losses]))

    def per_image_loc_loss(self, deltas, targets):
        loss = smooth_l1_loss(self._decoded(deltas, targets), targets.bbox_targets, targets.bbox_weights,
                              beta=self.head.train_cfg["smoothl1_beta"], reduction="none")
        return loss.flatten(1).sum(1) / targets.avg_factor

    def sampled(self, logits, targets):
        """Positives + the hardest ``neg_pos_ratio`` x positives negatives (by the target's CE),
        i.e. exactly the anchors SSD's classification loss uses."""
        valid = targets.label_weights > 0
        positive = targets.positives(self.num_classes) & valid
        negative = (targets.labels == self.num_classes) & valid
        with torch.no_grad():
            ce = F.cross_entropy(logits.flatten(0, 1), targets.labels.flatten(), reduction="none")
            ce = ce.view_as(targets.labels).masked_fill(~negative, float("-inf"))
            num_neg = (self.head.train_cfg["neg_pos_ratio"] * positive.sum(1)).clamp(
                max=negative.sum(1))
            order = ce.argsort(dim=1, descending=True)
            in_top = torch.arange(order.shape[1], device=order.device) < num_neg[:, None]
            hard_negative = torch.zeros_like(negative).scatter_(1, order, in_top)
        return positive | hard_negative

    def objectness(self, logits):
        return 1.0 - logits.softmax(dim=-1)[..., self.num_classes]

    def log_no_object(self, logits):
        return logits.log_softmax(dim=-1)[..., self.num_classes]

    def class_scores(self, logits):
        return logits.softmax(dim=-1)[..., :self.num_classes]

    def anchor_ce(self, logits, labels):
        return F.cross_entropy(logits.flatten(0, 1), labels.flatten(), reduction="none").view_as(labels)


def _check_anchors_mode(anchors):
    if anchors not in NASTY_ANCHORS:
        raise NatError(f"nasty anchors={anchors!r}; expected one of {NASTY_ANCHORS}")


# Most specific class first.
_ADAPTERS = ((SSDHead, SSDHeadAdapter), (AnchorHead, AnchorHeadAdapter))


def head_adapter(head):
    for head_class, adapter_class in _ADAPTERS:
        if isinstance(head, head_class):
            return adapter_class(head)
    raise NatError(f"no MTD/NAT adapter for {type(head).__name__}: add one in "
                   "nat_tasks/det/head_adapters.py (SSDHead and AnchorHead subclasses are supported)")
