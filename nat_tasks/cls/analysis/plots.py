"""The analysis figures: models side by side, one shared scale per figure, the definition as caption.

Every figure is written as a PNG through ``atomic_write_bytes`` (a temporary file and a rename), so
an interrupted run never leaves a torn image.
"""
import io
import textwrap

import numpy as np

from nat_tasks.core.checkpoint import atomic_write_bytes

CHARS_PER_INCH = 17  # caption characters per inch of figure width (7 pt)


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def panels(n_models, rows=1, width=4.2, height=3.6, caption=""):
    plt = _pyplot()
    fig_width = width * n_models + 1.6
    lines = textwrap.wrap(caption, width=int(CHARS_PER_INCH * fig_width)) if caption else []
    caption_inches = 0.15 * len(lines) + 0.2
    total = height * rows + caption_inches
    fig, axes = plt.subplots(rows, n_models, figsize=(fig_width, total), squeeze=False)
    fig.subplots_adjust(left=0.75 / fig_width, right=1 - 0.95 / fig_width, top=1 - 0.45 / total,
                        bottom=(caption_inches + 0.55) / total, wspace=0.35, hspace=0.5)
    if lines:
        fig.text(0.01, 0.01, "\n".join(lines), fontsize=7, va="bottom", ha="left", family="sans-serif")
    return fig, axes


def save_figure(fig, path):
    plt = _pyplot()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(buffer.getvalue(), str(path))
    return str(path)


def _ticks(ax, num_classes, names, axis="both"):
    step = max(1, num_classes // 10)
    ticks = list(range(0, num_classes, step))
    labels = [names[i] for i in ticks]
    if axis in ("x", "both"):
        ax.set_xticks(ticks)
        ax.set_xticklabels(labels, fontsize=7, rotation=90 if max(map(len, labels)) > 3 else 0)
    if axis in ("y", "both"):
        ax.set_yticks(ticks)
        ax.set_yticklabels(labels, fontsize=7)


def _limits(arrays, symmetric=False):
    values = np.concatenate([np.asarray(a, dtype=np.float64).ravel() for a in arrays])
    values = values[np.isfinite(values)]
    if not len(values):
        return (-1.0, 1.0) if symmetric else (0.0, 1.0)
    if symmetric:
        bound = float(np.abs(values).max()) or 1.0
        return -bound, bound
    low, high = float(values.min()), float(values.max())
    return (low, high) if high > low else (low - 0.5, high + 0.5)


def _heatmap_row(fig, axes, matrices, names, title, cmap, symmetric, colorbar_label):
    vmin, vmax = _limits(matrices.values(), symmetric)
    image = None
    for ax, (label, matrix) in zip(axes, matrices.items()):
        matrix = np.asarray(matrix, dtype=np.float64)
        colours = _pyplot().get_cmap(cmap).with_extremes(bad="lightgrey")  # NaN: undefined (a class and itself)
        image = ax.imshow(np.ma.masked_invalid(matrix), cmap=colours, vmin=vmin, vmax=vmax)
        ax.set_title(f"{label}: {title}", fontsize=9)
        _ticks(ax, matrix.shape[1], names)
    box = axes[-1].get_position()
    right = fig.subplotpars.right
    cax = fig.add_axes([right + 0.15 * (1 - right), box.y0, 0.15 * (1 - right), box.height])
    fig.colorbar(image, cax=cax).set_label(colorbar_label, fontsize=8)


def _class_names(num_classes, names):
    return list(names) if names is not None else [str(c) for c in range(num_classes)]


def plot_sparsity(curves, path, title="Output-probability sparsity (held-out digits)"):
    """One log-scale panel of ``curves`` (name -> sorted mean probabilities), written atomically
    (the demo's seed-averaged plot)."""
    plt = _pyplot()
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
    return save_figure(fig, path)


def plot_sparsity_panels(curves, path, caption=""):
    """``curves``: label -> dict(clean=curve, adversarial=curve or None); one panel per model,
    log scale, shared y axis."""
    fig, axes = panels(len(curves), caption=caption)
    low = min(max(float(np.min(c[k])), 1e-12) for c in curves.values() for k in ("clean", "adversarial")
              if c.get(k) is not None)
    for ax, (label, curve) in zip(axes[0], curves.items()):
        for key, style in (("clean", "o-"), ("adversarial", "s--")):
            if curve.get(key) is not None:
                values = np.maximum(np.asarray(curve[key], dtype=np.float64), 1e-12)
                ax.semilogy(range(1, len(values) + 1), values, style, markersize=3, label=key)
        ax.set_ylim(low / 2, 1.5)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("class rank (sorted by probability)", fontsize=8)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("mean softmax probability", fontsize=8)
    return save_figure(fig, path)


def plot_matrices(matrices, path, title, colorbar_label, caption="", names=None, cmap="viridis"):
    """``matrices``: label -> (C, C) array; one heatmap per model with one colour scale."""
    fig, axes = panels(len(matrices), caption=caption)
    names = _class_names(np.asarray(next(iter(matrices.values()))).shape[1], names)
    _heatmap_row(fig, axes[0], matrices, names, title, cmap, False, colorbar_label)
    return save_figure(fig, path)


def plot_class_rows(matrices, path, reference_class, bar_label, title, caption="", names=None,
                    symmetric=False, cmap="viridis"):
    """Top row: per model, row ``reference_class`` of its (C, C) matrix as bars (NaN: no bar);
    bottom row: the whole matrices as heatmaps. Both rows share one scale across models."""
    fig, axes = panels(len(matrices), rows=2, caption=caption)
    num_classes = np.asarray(next(iter(matrices.values()))).shape[1]
    names = _class_names(num_classes, names)
    rows = {label: np.asarray(m, dtype=np.float64)[reference_class] for label, m in matrices.items()}
    low, high = _limits(rows.values())
    low, high = min(low, 0.0), max(high, 0.0)
    pad = 0.05 * (high - low)
    for ax, (label, row) in zip(axes[0], rows.items()):
        colours = ["tab:blue" if v >= 0 else "tab:red" for v in np.nan_to_num(row)]
        ax.bar(range(num_classes), np.nan_to_num(row), color=colours)
        ax.axhline(0, color="black", linewidth=0.6)
        ax.set_ylim(low - pad, high + pad)
        ax.set_title(f"{label}: class {names[reference_class]}", fontsize=9)
        ax.set_xlabel("class j", fontsize=8)
        _ticks(ax, num_classes, names, axis="x")
    axes[0][0].set_ylabel(bar_label, fontsize=8)
    _heatmap_row(fig, axes[1], matrices, names, title, cmap, symmetric, bar_label)
    for ax in axes[1]:
        ax.set_xlabel("class j", fontsize=8)
        ax.set_ylabel("samples of class c", fontsize=8)
    return save_figure(fig, path)


def plot_umap(embeddings, path, caption="", names=None):
    """``embeddings``: label -> dict(points=(N, 2), labels=(N,), score=float); one scatter per
    model, coloured by class (the same colours in every panel)."""
    plt = _pyplot()
    fig, axes = panels(len(embeddings), caption=caption)
    num_classes = 1 + max(int(np.max(e["labels"])) for e in embeddings.values())
    names = _class_names(num_classes, names)
    cmap = plt.get_cmap("tab10" if num_classes <= 10 else "tab20" if num_classes <= 20 else "turbo")
    colour = (lambda c: cmap(c)) if num_classes <= 20 else (lambda c: cmap(c / max(1, num_classes - 1)))
    for ax, (label, e) in zip(axes[0], embeddings.items()):
        points, labels = np.asarray(e["points"]), np.asarray(e["labels"])
        for c in range(num_classes):
            chosen = labels == c
            if chosen.any():
                ax.scatter(points[chosen, 0], points[chosen, 1], s=5, color=colour(c), label=names[c])
        ax.set_title(f"{label} (silhouette {e['score']:.3f})", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    if num_classes <= 20:
        axes[0][-1].legend(fontsize=6, markerscale=2, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return save_figure(fig, path)
