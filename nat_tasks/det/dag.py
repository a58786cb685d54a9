"""DAG (Xie et al., ICCV 2017) on one-stage heads, with a dense target set.

Xie et al. attack a *dense* set of proposals (they raise the RPN's NMS threshold): each proposal on
a ground-truth object keeps that object's label t and gets a random wrong label w; every iteration
ascends ``sum(z_w - z_t)`` over the targets still classified correctly, with the step
``gamma * g / ||g||_inf`` (gamma 0.5), for at most 150 iterations; an image stops once no target
is left.

The target rule for one-stage heads (SSD, RetinaNet): mmdet's predict turns *every* class score
above the head's ``test_cfg.score_thr`` into a detection, and the VOC metric counts a detection
of class c as a true positive when its box overlaps a ground-truth box of class c by IoU >= 0.5.
So an anchor is a target while its prediction would survive as a true positive: its decoded box
has IoU >= ``iou_thr`` (0.5, VOC's test threshold) with a ground-truth box (the best-overlapping one
gives t) and its score for t is >= ``score_thr``. "Still correct" is this test, not the argmax: an
anchor whose argmax flipped still reports its object at a lower score, and AP only ranks scores.
The set is recomputed from the current prediction at every iteration, so a neighbour that takes
over an object becomes a target too. NMS and ``nms_pre`` are ignored (any such anchor could
survive once its neighbours are gone). w is drawn once per anchor.

Deviations from Xie et al., for the same Linf eps budget as the other attacks: the result is
projected to the eps ball, and the step is ``gamma * sign(g)`` (the steepest Linf step) instead of
``gamma * g / ||g||_inf``. Xie et al.'s attack has no budget, and their step moves only the few
pixels with the largest gradient: on the demo detector (8 test images, 30 iterations, gamma 0.5)
it left a mean |delta| of 0.25 (of eps 8) and 86 % of the targets alive, the sign step a mean
|delta| of 5.0 and 38 % alive.
"""
import torch

from ..core.attacks import projected_gradient_ascent
from .gt_match import best_gt
from .pixel_space import PIXEL_BOUNDS

DAG_IOU = 0.5


def surviving_targets(losses, logits, deltas, score_thr, iou_thr=DAG_IOU):
    """(B, A) bool: anchors whose prediction would be a true positive; (B, A) their true labels."""
    adapter = losses.adapter
    iou, labels = best_gt(adapter.boxes(deltas, losses.targets.anchors), losses.ground_truth())
    labels = labels.clamp(min=0)  # images without ground truth have iou 0: never a target
    true_score = adapter.class_scores(logits).gather(-1, labels[..., None]).squeeze(-1)
    return (iou >= iou_thr) & (true_score >= score_thr), labels


def attack_dag(losses, pixels, config, area, draws):
    """``draws``: the batch's ``ImageDraws`` (each image's wrong labels from its own stream)."""
    adapter = losses.adapter
    num_classes = adapter.num_classes
    # A random wrong label per anchor: true + a uniform shift in 1..C-1 (mod C).
    shift = draws.integers(1, max(num_classes, 2), losses.targets.labels.shape[1:], device=pixels.device)
    score_thr = adapter.score_threshold()
    last = {}

    def targets_at(adv, logits, deltas):
        active, true = surviving_targets(losses, logits.detach(), deltas.detach(), score_thr)
        last.update(pixels=adv.detach(), left=active.any(dim=1))
        return active, true

    def dag_loss(adv):
        logits, deltas = losses.outputs(adv)
        active, true = targets_at(adv, logits, deltas)
        wrong = (true + shift) % num_classes
        margin = logits.gather(-1, wrong[..., None]) - logits.gather(-1, true[..., None])
        return (margin.squeeze(-1) * active).sum(dim=1)

    def fooled(adv):
        # The engine asks right after the loss on the same pixels: reuse that forward pass.
        if "pixels" not in last or not torch.equal(adv, last["pixels"]):
            with torch.no_grad():
                targets_at(adv, *losses.outputs(adv))
        return ~last["left"]

    return projected_gradient_ascent(dag_loss, pixels, is_success=fooled, eps=config.eps, alpha=config.dag_gamma,
                                     steps=config.dag_steps, random_start=False, bounds=PIXEL_BOUNDS,
                                     early_stop=True, mask=area)
