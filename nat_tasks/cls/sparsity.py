"""Output-probability sparsity (the paper's Fig. 3): sorted mean softmax probabilities per model."""
import io

import torch

from nat_tasks.core.checkpoint import atomic_write_bytes


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


def plot_sparsity(curves, path, title="Output-probability sparsity (held-out digits)"):
    """Write a log-scale PNG of ``curves`` (name -> sorted mean probabilities) atomically."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, curve in curves.items():
        ranks = range(1, len(curve) + 1)
        ax.semilogy(ranks, [max(float(p), 1e-12) for p in curve], marker="o", label=name)
    ax.set_xlabel("class rank (sorted by probability)")
    ax.set_ylabel("mean softmax probability")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120)
    plt.close(fig)
    atomic_write_bytes(buffer.getvalue(), path)
