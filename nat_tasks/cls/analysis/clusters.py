"""Feature clusters: the UMAP embedding of the paper's Fig. 5 and a separation score.

- UMAP: ``umap-learn`` with a fixed ``random_state`` (which makes it single-threaded and
  reproducible), 2 components, ``n_neighbors=15`` (fewer when there are fewer points), on the
  penultimate features (the final linear layer's input) of clean test images.
- Separation score: the silhouette of those features (Euclidean, labels = true classes), computed
  in feature space, not on the 2-D embedding, so it does not depend on UMAP's randomness; in
  [-1, 1], higher = classes more compact and further apart. It is invariant to a global scale of
  the features.
"""
import numpy as np

from nat_tasks.core.errors import NatError


def silhouette(features, labels):
    """The silhouette score of ``features`` (N, D) grouped by ``labels``; NaN when undefined
    (fewer than two classes, or as many classes as samples)."""
    from sklearn.metrics import silhouette_score

    labels = np.asarray(labels)
    if not 2 <= len(np.unique(labels)) < len(labels):
        return float("nan")
    return float(silhouette_score(np.asarray(features, dtype=np.float64), labels, metric="euclidean"))


def umap_embedding(features, seed=0, n_neighbors=15):
    """(N, 2) UMAP embedding of ``features`` with ``random_state=seed`` (reproducible)."""
    try:
        import umap
    except ImportError:
        raise NatError("the UMAP figure needs umap-learn: pip install umap-learn==0.5.12 "
                       "(it is in requirements.txt)") from None
    features = np.asarray(features, dtype=np.float32)
    if len(features) < 4:
        raise NatError(f"the UMAP figure needs at least 4 examples, got {len(features)}")
    reducer = umap.UMAP(n_components=2, n_neighbors=min(n_neighbors, len(features) - 1), random_state=seed,
                        n_jobs=1)
    return np.asarray(reducer.fit_transform(features), dtype=np.float64)
