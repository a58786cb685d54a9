"""RAP (Li et al., BMVC 2018, "Robust Adversarial Perturbation on Deep Proposal-based Models") on
one-stage heads.

RAP breaks a two-stage detector's region proposals: proposals on objects lose their objectness
(the label term) and their box regression is pushed off (the shape term), so the second stage has
nothing right to classify. The objective, minimised over the image, as the authors' released code
computes it (github.com/yuezunli/BMVC2018R-AP, ``attacks/pytorch/attacks.py`` and
``attack_fr_wrapper.py``):

    L = 0.5 * L_label + 0.5 * L_shape
    L_label = mean_{j in P} -log(1 - s_j)                        (objectness s_j -> 0)
    L_shape = exp(-mean_{j in P, k} |d_jk - d_jk^clean + 1e-5|)  (offsets d_j away from the clean
                                                                  image's offsets d_j^clean)

P, re-selected at every iteration: the proposals with objectness s_j > 0.01 whose predicted box
overlaps an object with IoU > 0.3; the shape mean runs over P's four offsets (the 1e-5 gives |.| a
gradient at the clean offsets).

Transfer to one-stage heads: the anchors are the proposals, d_j the head's box deltas of anchor j,
and s_j = 1 - p(background) (SSD's softmax) or the largest class probability (sigmoid heads such as
RetinaNet's). Differences from the authors' code: the objects are the ground-truth boxes (theirs:
the clean image's detections scored > 0.5), as in our other attacks; the optimiser is the same Linf
PGD as A_cls / A_loc (random start, sign steps; tools/test.py: 10 steps of 2) in the same eps ball
as every other column (theirs: up to 200 L2-normalised steps, stopped at a mean squared distortion).
"""
import torch

from .gt_match import best_gt

RAP_OBJECTNESS = 0.01
RAP_IOU = 0.3
RAP_LABEL_WEIGHT = RAP_SHAPE_WEIGHT = 0.5
_ABS_OFFSET = 1e-5


def rap_objective(log_no_object, deltas, clean_deltas, proposals):
    """Per image (B,): the RAP loss to *minimise*; ``log_no_object``: (B, A) log(1 - s),
    ``deltas``/``clean_deltas``: (B, A, 4), ``proposals``: (B, A) bool P. An image without
    proposals has a constant loss (no gradient)."""
    weight = proposals.to(deltas.dtype)
    count = weight.sum(dim=1).clamp(min=1)
    label = -(log_no_object * weight).sum(dim=1) / count
    distance = ((deltas - clean_deltas + _ABS_OFFSET).abs() * weight[..., None]).sum(dim=(1, 2))
    shape = torch.exp(-distance / (count * deltas.shape[-1]))
    return RAP_LABEL_WEIGHT * label + RAP_SHAPE_WEIGHT * shape


def rap_proposals(losses, logits, deltas):
    """(B, A) bool P: objectness > 0.01 and predicted box IoU > 0.3 with a ground-truth box."""
    adapter = losses.adapter
    iou, _ = best_gt(adapter.boxes(deltas, losses.targets.anchors), losses.ground_truth())
    return (adapter.objectness(logits) > RAP_OBJECTNESS) & (iou > RAP_IOU)


def rap_loss(losses, pixels):
    """``adv -> (B,)`` the negated RAP objective (the engine ascends) for clean ``pixels``."""
    with torch.no_grad():
        _, clean_deltas = losses.outputs(pixels)

    def loss(adv):
        logits, deltas = losses.outputs(adv)
        proposals = rap_proposals(losses, logits.detach(), deltas.detach())
        return -rap_objective(losses.adapter.log_no_object(logits), deltas, clean_deltas, proposals)

    return loss
