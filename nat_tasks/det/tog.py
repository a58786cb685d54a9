"""The TOG attacks (Chow et al., "Adversarial Objectness Gradient Attacks in Real-time Object
Detection Systems", TPS 2020) on one-stage heads, through the head adapters.

The authors' code (github.com/git-disl/TOG, ``tog/attacks.py`` and ``models/ssd.py``) runs every
variant as the same Linf PGD: a uniform random start in the eps ball, 10 sign steps of eps/4
(8/255 and 2/255), and *descends* one loss on the detector's dense (per-anchor) output against
encoded targets; what differs is the targets:

- vanishing: every anchor's target is background; descend the mean CE over all anchors
  (objects vanish).
- fabrication: the same loss, ascended (background anchors turn into objects).
- untargeted: the targets are the clean image's detections (score > 0.5, their
  ``confidence_thresh_default``), assigned to anchors by the model's box encoder; ascend the CE
  plus the smooth-L1 box loss over the anchors matched to a detection.
- mislabeling: the same detections with a wrong label, the most likely class among those
  scoring <= 0.5 (their ``ML`` mode, background excluded); descend the CE plus box loss to them.

Here: the anchors and the assignment are the head's own (``TaskLosses.assign`` runs its assigner
on the detections), the CE is the head's activation (``anchor_ce``: softmax CE, or the per-class
binary CE of sigmoid heads, whose background is "every class score 0"), and the box loss is the
head's localisation loss on those targets. One deviation: mislabeling picks the wrong class per
anchor from that anchor's clean scores (the authors: per detection, from the detection's scores,
which this head's NMS output does not carry). Losses are sums over an image's anchors divided by the
batch's count (the head's normaliser); only their sign matters to the sign steps.

Mislabeling, as the authors', relabels only the anchors matched to a detection: neighbouring
anchors whose boxes land on the object keep its class, and mmdet reports every class score above
``score_thr``, so the true detection can survive at a lower score and mAP need not fall.
"""
import copy

import torch

TOG_CONFIDENCE = 0.5  # the authors' confidence_thresh_default: what counts as a detection


def clean_detections(losses, confidence=TOG_CONFIDENCE):
    """The detector's detections on the clean pixels scoring > ``confidence``, input coordinates:
    the head's own predict with ``confidence`` as its score threshold, applied before NMS as the
    authors' ``detect`` does (cheaper than NMS over every score above the head's ``score_thr``),
    on the batch's one clean forward pass (``TaskLosses.clean_outputs``)."""
    head = losses.detector.bbox_head
    cfg = copy.deepcopy(head.test_cfg)
    cfg.score_thr = confidence
    with torch.no_grad():
        metas = [sample.metainfo for sample in losses.data_samples]
        return head.predict_by_feat(*losses.clean_outputs, batch_img_metas=metas, cfg=cfg, rescale=False)


def vanishing_loss(losses, sign=-1.0):
    """``adv -> (B,)`` to ascend: ``sign`` x the mean CE of every anchor to background (vanishing:
    -1, fabrication: +1)."""
    background = losses.adapter.num_classes

    def loss(adv):
        logits, _ = losses.outputs(adv)
        labels = torch.full(logits.shape[:2], background, dtype=torch.long, device=logits.device)
        return sign * losses.adapter.anchor_ce(logits, labels).mean(dim=1)

    return loss


def most_likely_wrong(adapter, logits, labels):
    """(B, A) per anchor, the most likely class other than ``labels`` (the authors' ML target)."""
    scores = adapter.class_scores(logits).clone()
    own = labels.clamp(max=adapter.num_classes - 1)[..., None]
    scores.scatter_(-1, own, float("-inf"))
    return scores.argmax(dim=-1)


def detection_loss(losses, mislabel=False):
    """``adv -> (B,)`` to ascend against the clean detections: untargeted, the CE + box loss of
    the anchors matched to them; ``mislabel``, minus that loss to wrong labels."""
    adapter = losses.adapter
    targets = losses.assign(clean_detections(losses))
    positive = targets.positives(adapter.num_classes) & (targets.label_weights > 0)
    labels = targets.labels
    if mislabel:
        clean_logits = adapter.flat_logits(losses.clean_outputs[0])
        labels = torch.where(positive, most_likely_wrong(adapter, clean_logits, labels), labels)
    sign = -1.0 if mislabel else 1.0

    def loss(adv):
        logits, deltas = losses.outputs(adv)
        if not positive.any():  # nothing detected in the batch: nothing to attack (the authors: a zero gradient)
            return logits.sum(dim=(1, 2)) * 0.0
        ce = (adapter.anchor_ce(logits, labels) * positive).sum(dim=1) / targets.avg_factor
        box = adapter.per_image_loc_loss(deltas, targets)
        return sign * (ce + box)

    return loss
