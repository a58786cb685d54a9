"""The reference's metric-attack objectives (CEA-LIST/adv-reid, ``utils/adv_evaluation.py``),
restated literally for the tests: per image a list of push guides, its identity's clean features
(itself included) padded with copies of its own clean feature up to the size of the largest
identity; the loss sums the squared distances to them and, for FNA, subtracts one squared
distance to the mean clean feature of the other identity furthest from the image."""
import torch


def padded_guides(clean, pids):
    groups = {int(p): [clean[j] for j in range(len(pids)) if pids[j] == p] for p in pids}
    largest = max(len(group) for group in groups.values())
    return [groups[int(p)] + [clean[i]] * (largest - len(groups[int(p)])) for i, p in enumerate(pids)]


def furthest_other_centre(clean, pids, i):
    centres = {int(p): clean[pids == p].mean(0) for p in pids.unique() if p != pids[i]}
    return max(centres.values(), key=lambda c: float(((clean[i] - c) ** 2).sum()))


def reference_loss(feats, clean, pids, kind):
    """Per-image objective of ``ifgsm`` (``multi_mse``) or ``fna`` (``max_min_mse``) at ``feats``."""
    guides = padded_guides(clean, pids)
    losses = []
    for i, f in enumerate(feats):
        loss = sum(((f - g) ** 2).sum() for g in guides[i])
        if kind == "fna":
            loss = loss - ((f - furthest_other_centre(clean, pids, i)) ** 2).sum()
        losses.append(loss)
    return torch.stack(losses)
