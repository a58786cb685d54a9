"""The paper's analysis figures (Figs. 3-8) for any classifiers that end in a linear layer.

``analyze_models({'VT': m1, 'AT': m2, 'NAT': m3}, x, y, out)`` writes ``sparsity.png``,
``hyperplanes.png``, ``umap.png``, ``boundary.png``, ``weights.png``, ``runner_up.png`` (models side
by side, one scale per figure, the definition as caption), ``analysis.json`` and ``analysis.md``.
One module per job: ``head`` (the final ``nn.Linear`` and its input features), ``probabilities``
(sparsity, runner-up), ``geometry`` (boundaries, weight gaps, eq. 12), ``clusters`` (UMAP,
silhouette), ``plots`` (the figures), ``report`` (the run and its files); ``tools/analyze_cls.py``
is the command.
"""
from nat_tasks.cls.analysis.clusters import silhouette, umap_embedding
from nat_tasks.cls.analysis.geometry import (boundary_distances, class_means, eq12_directed, mean_off_diagonal, nearest_boundary,
                       shortest_distances, weight_gaps)
from nat_tasks.cls.analysis.head import final_linear, forward_features
from nat_tasks.cls.analysis.plots import plot_sparsity
from nat_tasks.cls.analysis.probabilities import (runner_up_concentration, runner_up_matrix, sorted_mean_probabilities, sparsity_curve,
                            tail_mass)
from nat_tasks.cls.analysis.report import CAPTIONS, FIGURES, analyze_model, analyze_models, isolated_rng, parse_figures

__all__ = ["silhouette", "umap_embedding", "boundary_distances", "class_means", "eq12_directed",
           "mean_off_diagonal", "nearest_boundary", "shortest_distances", "weight_gaps", "final_linear",
           "forward_features", "plot_sparsity", "runner_up_concentration", "runner_up_matrix",
           "sorted_mean_probabilities", "sparsity_curve", "tail_mass", "CAPTIONS", "FIGURES", "analyze_model",
           "analyze_models", "isolated_rng", "parse_figures"]
