"""Output probabilities: sparsity (the paper's Fig. 3) and runner-up classes (Fig. 8).

- Sparsity curve: the mean over samples of each sample's softmax probabilities sorted in
  decreasing order (rank 1 = the top class). A sparse model puts its mass on the top class and a few
  related ones: the curve falls steeply after the first ranks instead of flattening into a uniform
  floor. Its scalar is the mass outside the top-2 classes, ``sum(curve[2:])``.
- Runner-up matrix: ``R[c, j]`` = mean probability of class j over the samples of class c. Row c
  without its diagonal is Fig. 8 (which classes a model prefers as runner-up for class c). Its
  scalar is the runner-up concentration, the mean over classes c of
  ``max_{j != c} R[c, j] / sum_{j != c} R[c, j]``: 1 when all of a class's non-target mass goes to
  one runner-up, ``1 / (C - 1)`` when it is spread uniformly.
"""
import numpy as np
import torch


@torch.no_grad()
def sorted_mean_probabilities(model, x, *, batch_size=500, device=None):
    """Mean over ``x`` of each sample's softmax probabilities sorted in decreasing order, shape (C,).

    A sparse model puts its mass on the top class and a few related ones: the curve falls steeply
    after the first ranks instead of flattening into a uniform floor.
    """
    device = device or next(model.parameters()).device
    model = model.to(device).eval()
    total = None
    for i in range(0, len(x), batch_size):
        probs = model(x[i:i + batch_size].to(device)).softmax(dim=1).sort(dim=1, descending=True).values
        total = probs.sum(dim=0) if total is None else total + probs.sum(dim=0)
    return (total / len(x)).cpu()


def sparsity_curve(probs):
    """(C,) mean over the rows of ``probs`` (N, C) of each row sorted in decreasing order."""
    probs = np.asarray(probs, dtype=np.float64)
    return -np.sort(-probs, axis=1).mean(axis=0)


def tail_mass(curve, top=2):
    """Probability mass outside the ``top`` largest classes of a sparsity curve (lower = sparser)."""
    return float(np.sum(np.asarray(curve, dtype=np.float64)[top:]))


def runner_up_matrix(probs, labels, num_classes):
    """(C, C): ``R[c, j]`` = mean of ``probs[:, j]`` over the samples of class c (NaN rows for
    classes without samples)."""
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels)
    out = np.full((num_classes, probs.shape[1]), np.nan)
    for c in range(num_classes):
        if (labels == c).any():
            out[c] = probs[labels == c].mean(axis=0)
    return out


def runner_up_concentration(matrix):
    """Mean over classes c (with samples) of ``max_{j != c} R[c, j] / sum_{j != c} R[c, j]``."""
    matrix = np.asarray(matrix, dtype=np.float64)
    shares = []
    for c, row in enumerate(matrix):
        others = np.delete(row, c)
        if np.isfinite(others).all() and others.sum() > 0:
            shares.append(others.max() / others.sum())
    return float(np.mean(shares)) if shares else float("nan")
