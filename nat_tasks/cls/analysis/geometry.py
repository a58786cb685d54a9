"""Geometry of the final linear layer ``z = W f + b`` (rows ``w_c``, biases ``b_c``) in feature space.

- Decision boundary between classes c and j: ``H_cj = {f : (w_c - w_j) . f + b_c - b_j = 0}``.
- Signed distance of a feature vector f to it (the paper's eq. 10 without the absolute value, as in
  Fig. 6, written for the pairwise boundary): ``(z_c - z_j) / ||w_c - w_j||``, positive on c's side.
  For a correctly classified sample of class c, ``min_j`` of these is exactly its Euclidean distance
  to the boundary of its decision region (the region is the intersection of the half-spaces
  ``z_c >= z_j``, and the distance from an interior point to the complement of an intersection of
  half-spaces is the smallest distance to one of their hyperplanes).
- Inter-class weight gap (eq. 11, Fig. 7): ``||w_i - w_j||``.
- "Shortest distance between classification hyperplanes" (eqs. 12-13, Fig. 4), see
  ``shortest_distances``: two hyperplanes whose normals are not parallel intersect (in D >= 2
  dimensions their two equations always have a common solution), so their set distance is 0 and
  cannot be what Fig. 4 shows. Eq. 12 instead treats each class's weight vector as a line through
  the origin along ``d_i = w_i / ||w_i||`` and measures the part of ``gamma = w_j - w_i`` orthogonal
  to it: ``||gamma - (gamma . d_i) d_i|| = ||w_j - (w_j . d_i) d_i|| = ||w_j|| |sin(angle(w_i, w_j))|``,
  i.e. the distance from the tip of ``w_j`` to the line of ``w_i``. That is not symmetric, while Fig. 4
  is; we take the shorter of the two directions: ``min(||w_i||, ||w_j||) |sin(angle)|``. (Eq. 13 is
  eq. 12 with a sign slip and ``||d_i|| = 1``.) Biases play no role in it.
"""
import warnings

import numpy as np


def _rows(weight):
    return np.asarray(weight, dtype=np.float64)


def weight_gaps(weight):
    """(C, C) matrix of ``||w_i - w_j||`` (eq. 11); zero diagonal."""
    w = _rows(weight)
    return np.linalg.norm(w[:, None, :] - w[None, :, :], axis=-1)


def eq12_directed(weight):
    """(C, C) matrix ``E[i, j] = ||gamma - (gamma . d_i) d_i||`` with ``gamma = w_j - w_i``,
    ``d_i = w_i / ||w_i||`` (eq. 12 as printed): the distance from the tip of ``w_j`` to the line
    through the origin along ``w_i`` (= ``||w_j|| |sin angle(w_i, w_j)|``); zero diagonal."""
    w = _rows(weight)
    d = w / np.linalg.norm(w, axis=1, keepdims=True)
    gamma = w[None, :, :] - w[:, None, :]                      # gamma[i, j] = w_j - w_i
    along = np.einsum("ijk,ik->ij", gamma, d)                 # gamma[i, j] . d_i
    return np.linalg.norm(gamma - along[:, :, None] * d[:, None, :], axis=-1)


def shortest_distances(weight):
    """(C, C) symmetric matrix ``min(E[i, j], E[j, i]) = min(||w_i||, ||w_j||) |sin angle(w_i, w_j)|``
    (``E = eq12_directed``): the shortest-hyperplane-distance matrix of Fig. 4 as we define it."""
    directed = eq12_directed(weight)
    return np.minimum(directed, directed.T)


def boundary_distances(logits, labels, weight):
    """(N, C): for sample n of class c = ``labels[n]``, ``(z_c - z_j) / ||w_c - w_j||`` per class j
    (its signed distance to the boundary ``H_cj``, positive on c's side); NaN at j = c."""
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    rows = np.arange(len(y))
    gaps = weight_gaps(weight)[y]                              # (N, C): ||w_c - w_j||
    with np.errstate(divide="ignore", invalid="ignore"):
        distances = (z[rows, y][:, None] - z) / gaps
    distances[rows, y] = np.nan
    return distances


def class_means(values, labels, num_classes):
    """(C, C): row c is the mean of ``values`` (N, C) over the samples of class c (NaN where a class
    has no sample; NaN entries of a row are ignored)."""
    values = np.asarray(values, dtype=np.float64)
    labels = np.asarray(labels)
    out = np.full((num_classes, values.shape[1]), np.nan)
    for c in range(num_classes):
        rows = values[labels == c]
        if len(rows):
            with warnings.catch_warnings():  # an all-NaN column (a class alone) stays NaN
                warnings.simplefilter("ignore", RuntimeWarning)
                out[c] = np.nanmean(rows, axis=0)
    return out


def nearest_boundary(distances, correct):
    """Per correctly classified sample, its distance to the nearest boundary ``min_j`` of
    ``boundary_distances`` (exactly its distance to the edge of its decision region)."""
    distances = np.asarray(distances)[np.asarray(correct, dtype=bool)]
    return np.nanmin(distances, axis=1) if len(distances) else np.zeros(0)


def mean_off_diagonal(matrix):
    """Mean of the entries i != j (each pair twice for a symmetric matrix, which does not change it)."""
    matrix = np.asarray(matrix, dtype=np.float64)
    mask = ~np.eye(len(matrix), dtype=bool)
    return float(np.nanmean(matrix[mask])) if mask.any() else float("nan")

