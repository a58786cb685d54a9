"""The analysis of several classifiers on the same examples: numbers, figures, JSON and Markdown.

``analyze_models({label: model}, x, y, out)`` computes, per model, the quantities behind the
paper's Figs. 3-8 (definitions: ``CAPTIONS``, and the modules ``probabilities``, ``geometry``,
``clusters``), writes one PNG per figure with the models side by side on one scale, and
``<out>/analysis.json`` (every number) and ``<out>/analysis.md`` (one scalar per figure and model,
with the definitions). It draws random numbers only from generators it seeds itself and restores
torch's, numpy's and Python's global random state afterwards, so it can run inside a longer job
(the demo) without changing that job's results.
"""
import contextlib
import math
import os
import random

import numpy as np
import torch

from nat_tasks.core.attacks import pgd
from nat_tasks.core.errors import NatError
from nat_tasks.runtime import markdown_table, write_results

from nat_tasks.cls.analysis import clusters, geometry, probabilities, plots
from nat_tasks.cls.data.subsets import subset_indices
from nat_tasks.cls.analysis.head import forward_features

FIGURES = ("sparsity", "hyperplanes", "umap", "boundary", "weights", "runner_up")

CAPTIONS = dict(
    sparsity=("Fig. 3, sparsity: the mean over the examples of each example's softmax probabilities sorted in "
              "decreasing order, per rank (log scale), on clean inputs and on adversarial inputs ({attack}). "
              "Scalar: the mass outside the top-2 classes, the sum over ranks 3..C (lower = sparser)."),
    hyperplanes=("Fig. 4, shortest distance between classification hyperplanes (eq. 12): for the final linear "
                 "layer z = W f + b, class i's weight vector is taken as a line through the origin along "
                 "d_i = w_i/||w_i||, and the distance is the part of gamma = w_j - w_i orthogonal to it, "
                 "||gamma - (gamma.d_i) d_i|| = ||w_j|| |sin angle(w_i, w_j)|; the matrix shows the shorter of the "
                 "two directions, min(||w_i||, ||w_j||) |sin angle(w_i, w_j)|. (The decision boundaries "
                 "{{f: (w_i - w_j).f + b_i - b_j = 0}} themselves intersect unless parallel: their set distance "
                 "is 0.) Scalar: the mean over i != j."),
    weights=("Fig. 7, inter-class weight gap (eq. 11): ||w_i - w_j|| for the rows of the final linear layer's "
             "weight. Scalar: the mean over i != j."),
    boundary=("Fig. 6, distance to the decision boundaries: for the examples of class c, the mean signed distance "
              "(z_c - z_j)/||w_c - w_j|| of their features to the boundary between c and j (eq. 10 without the "
              "absolute value, for the pairwise boundary; positive = on c's side); top: class {reference}, "
              "bottom: every class c (rows). Scalar: the mean over correctly classified examples of the distance "
              "to their nearest boundary, min_j (z_c - z_j)/||w_c - w_j||, i.e. their exact Euclidean distance "
              "to the edge of their decision region in feature space."),
    umap=("Fig. 5, UMAP (umap-learn, 2-D, n_neighbors 15, random_state {seed}) of the penultimate features (the "
          "final linear layer's input) of {umap_points} clean test examples, coloured by true class. Scalar: the "
          "silhouette of those features themselves (Euclidean, true classes; in [-1, 1], higher = classes more "
          "compact and further apart)."),
    runner_up=("Fig. 8, runner-up classes: for the examples of class c, the mean softmax probability of each class "
               "j on clean inputs, R[c, j]; top: class {reference} (its own bar left out), bottom: every class c "
               "(rows), diagonal left out. Scalar: the runner-up concentration, the mean over classes c of "
               "max_{{j != c}} R[c, j] / sum_{{j != c}} R[c, j] (1 = all non-target mass on one class, "
               "1/(C-1) = spread uniformly)."),
)

# the summary's scalar per figure: (key in a model's entry, column header)
SCALARS = dict(
    sparsity=[("tail_mass_clean", "mass outside top-2 (clean)"),
              ("tail_mass_adversarial", "mass outside top-2 (adversarial)")],
    hyperplanes=[("mean_shortest_distance", "mean shortest hyperplane distance")],
    weights=[("mean_weight_gap", "mean weight gap ‖w_i − w_j‖")],
    boundary=[("mean_nearest_boundary", "mean distance to nearest boundary (correct)")],
    umap=[("silhouette", "feature silhouette")],
    runner_up=[("runner_up_concentration", "runner-up concentration")],
)


def parse_figures(text):
    """``'sparsity,umap'`` (or a list) -> the figure names, in ``FIGURES`` order; unknown: NatError."""
    names = [n.strip() for n in (text.split(",") if isinstance(text, str) else text) if n.strip()]
    unknown = [n for n in names if n not in FIGURES]
    if unknown or not names:
        raise NatError(f"unknown figure(s) {unknown or names}; expected some of {','.join(FIGURES)}")
    return [f for f in FIGURES if f in names]


@contextlib.contextmanager
def isolated_rng(seed, device):
    """Seed torch with ``seed`` inside, restore torch's (CPU and the device's), numpy's and Python's
    global random state on exit."""
    devices = list(range(torch.cuda.device_count())) if torch.device(device).type == "cuda" else []
    numpy_state, python_state = np.random.get_state(), random.getstate()
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        try:
            yield
        finally:
            np.random.set_state(numpy_state)
            random.setstate(python_state)


def _adversarial_probabilities(model, x, y, attack, batch_size, device):
    out = []
    for i in range(0, len(x), batch_size):
        xb, yb = x[i:i + batch_size].to(device), y[i:i + batch_size].to(device)
        x_adv = pgd(model, xb, yb, eps=attack["eps"], alpha=attack["alpha"], steps=attack["steps"])
        with torch.no_grad():
            out.append(model(x_adv).float().softmax(dim=1).cpu())
    return torch.cat(out).numpy()


def _json(value):
    """Arrays to nested lists, NaN/inf to None (strict JSON)."""
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json(v) for v in value]
    if isinstance(value, np.ndarray):
        return _json(value.tolist())
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def analyze_model(model, x, y, *, figures=FIGURES, attack=None, seed=0, batch_size=256, device=None,
                  umap_points=2000, progress=False, what="the model"):
    """The numbers behind ``figures`` for one model on ``x``, ``y`` (a dict; arrays for the plots)."""
    out = forward_features(model, x, batch_size=batch_size, device=device, progress=progress, what=what)
    logits, labels = out["logits"].numpy(), y.numpy()
    num_classes = logits.shape[1]
    probs = torch.softmax(out["logits"].double(), dim=1).numpy()
    correct = logits.argmax(axis=1) == labels
    entry = dict(n=len(labels), num_classes=num_classes, clean_accuracy=100 * float(correct.mean()),
                 feature_dim=int(out["features"].shape[1]))
    weight = out["weight"].numpy()
    if "sparsity" in figures:
        entry["curve_clean"] = probabilities.sparsity_curve(probs)
        entry["tail_mass_clean"] = probabilities.tail_mass(entry["curve_clean"])
        entry["curve_adversarial"], entry["tail_mass_adversarial"] = None, None
        if attack is not None:
            model_device = next(model.parameters()).device
            adversarial = _adversarial_probabilities(model, x, y, attack, batch_size, model_device)
            entry["curve_adversarial"] = probabilities.sparsity_curve(adversarial)
            entry["tail_mass_adversarial"] = probabilities.tail_mass(entry["curve_adversarial"])
            entry["adversarial_accuracy"] = 100 * float((adversarial.argmax(axis=1) == labels).mean())
    if "weights" in figures:
        entry["weight_gaps"] = geometry.weight_gaps(weight)
        entry["mean_weight_gap"] = geometry.mean_off_diagonal(entry["weight_gaps"])
    if "hyperplanes" in figures:
        entry["shortest_distances"] = geometry.shortest_distances(weight)
        entry["eq12_directed"] = geometry.eq12_directed(weight)
        entry["mean_shortest_distance"] = geometry.mean_off_diagonal(entry["shortest_distances"])
    if "boundary" in figures:
        distances = geometry.boundary_distances(logits, labels, weight)
        entry["boundary_distances"] = geometry.class_means(distances, labels, num_classes)
        entry["mean_nearest_boundary"] = float(np.mean(geometry.nearest_boundary(distances, correct))) \
            if correct.any() else float("nan")
    if "runner_up" in figures:
        entry["runner_up"] = probabilities.runner_up_matrix(probs, labels, num_classes)
        entry["runner_up_concentration"] = probabilities.runner_up_concentration(entry["runner_up"])
    if "umap" in figures:
        index = subset_indices(len(labels), umap_points, seed=seed)
        features = out["features"].numpy()[index]
        entry["umap_labels"] = labels[index]
        entry["silhouette"] = clusters.silhouette(features, labels[index])
        entry["umap"] = clusters.umap_embedding(features, seed=seed)
    return entry


def analyze_models(models, x, y, out, *, figures=FIGURES, attack=None, seed=0, batch_size=256, device=None,
                   reference_class=0, umap_points=2000, class_names=None, progress=False, title="Analysis",
                   log=print):
    """Analyse ``models`` (label -> classifier on [0, 1] inputs) on the same ``x``, ``y``; write the
    figures, ``analysis.json`` and ``analysis.md`` to ``out``; returns ``(report, markdown table)``.

    ``attack``: dict(eps, alpha, steps) of the Linf PGD whose examples give the adversarial sparsity
    curve (None: clean only). ``reference_class``: the class of the Fig. 6 / Fig. 8 bars.
    """
    figures = parse_figures(figures)
    device = device or "cpu"
    entries = {}
    with isolated_rng(seed, device):
        for label, model in models.items():
            log(f"analysing {label} on {len(x)} examples ({', '.join(figures)})")
            entries[label] = analyze_model(model, x, y, figures=figures, attack=attack, seed=seed,
                                           batch_size=batch_size, device=device, umap_points=umap_points,
                                           progress=progress, what=label)
        sizes = {e["num_classes"] for e in entries.values()}
        if len(sizes) > 1:
            raise NatError(f"the models have different numbers of classes ({sorted(sizes)}): compare models of "
                           "one data set")
        num_classes = sizes.pop()
        if not 0 <= reference_class < num_classes:
            raise NatError(f"--class {reference_class} is not a class of these models (0..{num_classes - 1})")
        n_umap = min(len(x), umap_points)
        attack_text = ("Linf PGD-{steps}, eps {eps:g}, step {alpha:g}, random start".format(**attack)
                       if attack else "not computed")
        captions = {f: CAPTIONS[f].format(attack=attack_text, reference=reference_class, seed=seed,
                                          umap_points=n_umap) for f in figures}
        os.makedirs(out, exist_ok=True)
        paths = _plot(entries, figures, captions, out, reference_class, class_names)
    rows = [dict(model=label, accuracy=f"{e['clean_accuracy']:.1f}",
                 **{key: _format(e.get(key)) for f in figures for key, _ in SCALARS[f]})
            for label, e in entries.items()]
    columns = [("model", "model"), ("accuracy", f"clean accuracy (n={len(x)})")]
    columns += [column for f in figures for column in SCALARS[f]]
    table = markdown_table(rows, columns)
    definitions = "\n".join(f"- `{f}.png`: {captions[f]}" for f in figures)
    markdown = f"# {title}\n\n{table}\n{definitions}\n"
    report = dict(n_examples=len(x), num_classes=num_classes, seed=seed, attack=attack, figures=figures,
                  reference_class=reference_class, captions=captions, files=paths,
                  models={label: _json(e) for label, e in entries.items()})
    write_results(os.path.join(out, "analysis"), report, markdown)
    return report, table


def _format(value):
    return "n/a" if value is None or (isinstance(value, float) and not math.isfinite(value)) else f"{value:.3f}"


def _off_diagonal(matrix):
    """A copy with NaN on the diagonal (drawn grey, outside the colour scale)."""
    matrix = np.array(matrix, dtype=np.float64)
    np.fill_diagonal(matrix, np.nan)
    return matrix


def _plot(entries, figures, captions, out, reference_class, class_names):
    paths = {}
    path = lambda name: os.path.join(out, f"{name}.png")  # noqa: E731
    if "sparsity" in figures:
        paths["sparsity"] = plots.plot_sparsity_panels(
            {label: dict(clean=e["curve_clean"], adversarial=e["curve_adversarial"]) for label, e in entries.items()},
            path("sparsity"), caption=captions["sparsity"])
    if "hyperplanes" in figures:
        paths["hyperplanes"] = plots.plot_matrices(
            {label: _off_diagonal(e["shortest_distances"]) for label, e in entries.items()}, path("hyperplanes"),
            "shortest distance", "min(|w_i|, |w_j|) |sin angle|", caption=captions["hyperplanes"], names=class_names)
    if "umap" in figures:
        paths["umap"] = plots.plot_umap(
            {label: dict(points=e["umap"], labels=e["umap_labels"], score=e["silhouette"])
             for label, e in entries.items()}, path("umap"), caption=captions["umap"], names=class_names)
    if "boundary" in figures:
        paths["boundary"] = plots.plot_class_rows(
            {label: e["boundary_distances"] for label, e in entries.items()}, path("boundary"), reference_class,
            "mean (z_c - z_j) / |w_c - w_j|", "signed distance", caption=captions["boundary"], names=class_names,
            symmetric=True, cmap="RdBu")
    if "weights" in figures:
        paths["weights"] = plots.plot_matrices(
            {label: _off_diagonal(e["weight_gaps"]) for label, e in entries.items()}, path("weights"), "||w_i - w_j||",
            "||w_i - w_j||", caption=captions["weights"], names=class_names)
    if "runner_up" in figures:
        paths["runner_up"] = plots.plot_class_rows(
            {label: _off_diagonal(e["runner_up"]) for label, e in entries.items()}, path("runner_up"), reference_class,
            "mean probability", "runner-up probability", caption=captions["runner_up"], names=class_names)
    return paths
