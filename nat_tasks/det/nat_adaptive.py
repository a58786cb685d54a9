"""The NAT-adaptive attack on detectors: eq. 14 of the NAT paper with the detector's losses.

The attacker knows the defence: it ascends the head's classification loss *minus* the nasty term
(``cls + loss_nasty``, ``loss_nasty = -weight * tau^2 * KL(p_target || p_adversary) / avg_factor``
over the anchors the nasty term covers), with gradients through the target *and* the frozen
adversary detector, both on the attacked pixels. Ascending it lowers the target's classification
and pulls its anchor distributions toward the adversary's, undoing what NAT trained against.
Weight, tau, the tau^2 switch, the anchors and the adversary are the model config's
``model.nasty`` (the same ``parse_det_nasty`` and ``build_frozen_adversary`` training uses), so the
attack is the one the model was trained against.
"""
from ..core.nasty import NastyLoss
from .adversary import build_frozen_adversary
from .detectors import parse_det_nasty


class AdaptiveObjective:
    """A config's ``model.nasty`` section as the attack's fixed parts: the parsed settings, and
    the frozen adversary, built on first use (it is checked against the target's head)."""

    def __init__(self, nasty_section):
        self.spec = parse_det_nasty(nasty_section)
        self.adversary = None

    def loss(self, losses, device):
        """``adv -> (B,)``: per image, the classification loss plus the nasty term (to ascend)."""
        adapter, targets = losses.adapter, losses.targets
        if self.adversary is None:
            self.adversary = build_frozen_adversary(self.spec, adapter.head)
        self.adversary.to(device)
        nasty = NastyLoss(self.spec.weight, self.spec.tau, self.spec.scale_by_tau2, kind=adapter.kind,
                          reduction="none", through_adversary=True)
        anchors = self.spec.options["anchors"]

        def loss(adv):
            logits, deltas = losses.outputs(adv)
            cls, _ = adapter.per_image_losses(logits, deltas, targets)
            chosen = adapter.nasty_mask(logits, targets, anchors)
            term = nasty(logits, self.adversary.differentiable(adv), sample_weight=chosen)
            return cls + term.sum(dim=1) / targets.avg_factor

        return loss
