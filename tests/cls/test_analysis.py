"""The analysis quantities (nat_tasks/cls/analysis) on hand-built models with known answers, and
the figures they draw."""
import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from nat_tasks.cls import CLASSIFIERS, build_classifier
from nat_tasks.cls.analysis import (analyze_models, boundary_distances, class_means, eq12_directed, final_linear,
                                    forward_features, nearest_boundary, parse_figures, runner_up_concentration,
                                    runner_up_matrix, shortest_distances, silhouette, sorted_mean_probabilities,
                                    sparsity_curve, tail_mass, umap_embedding, weight_gaps)
from nat_tasks.cls.analysis.plots import plot_sparsity
from nat_tasks.core.errors import NatError

PNG = b"\x89PNG\r\n\x1a\n"
# three classes in a 2-D feature space: w0 = (3, 0), w1 = (0, 4), w2 = (-3, 0); b = (1, 0, -1)
W = torch.tensor([[3.0, 0.0], [0.0, 4.0], [-3.0, 0.0]])
B = torch.tensor([1.0, 0.0, -1.0])


def linear_model(weight=W, bias=B):
    """features = the input itself (N, 2) -> logits = W f + b."""
    head = nn.Linear(weight.shape[1], weight.shape[0])
    with torch.no_grad():
        head.weight.copy_(weight)
        head.bias.copy_(bias)
    return nn.Sequential(nn.Flatten(), head)


def test_weight_gaps_and_the_shortest_distance_of_eq_12():
    assert np.allclose(weight_gaps(W), [[0, 5, 6], [5, 0, 5], [6, 5, 0]])
    # eq. 12 as printed: E[i, j] = ||gamma - (gamma . d_i) d_i||, gamma = w_j - w_i = ||w_j|| |sin angle|
    assert np.allclose(eq12_directed(W), [[0, 4, 0], [3, 0, 3], [0, 4, 0]])  # w0 and w2 are (anti)parallel
    assert np.allclose(shortest_distances(W), [[0, 3, 0], [3, 0, 3], [0, 3, 0]])  # the shorter direction
    # at 45 degrees: |w_i| = 2, |w_j| = sqrt(8): min(2, sqrt 8) * sin 45 = sqrt(2)
    assert shortest_distances(torch.tensor([[2.0, 0.0], [2.0, 2.0]]))[0, 1] == pytest.approx(math.sqrt(2))


def test_signed_boundary_distances_and_the_nearest_boundary():
    features = torch.tensor([[2.0, 1.0], [0.0, 2.0], [1.0, 0.0]])
    labels = torch.tensor([0, 1, 2])  # the third is misclassified (its logits favour class 0)
    logits = features @ W.T + B        # (7, 4, -7), (1, 8, -1), (4, 0, -4)
    d = boundary_distances(logits, labels, W)
    expected = [[np.nan, 3 / 5, 14 / 6], [7 / 5, np.nan, 9 / 5], [-8 / 6, -4 / 5, np.nan]]
    assert np.allclose(d, expected, equal_nan=True)
    correct = (logits.argmax(1) == labels).numpy()
    assert correct.tolist() == [True, True, False]
    assert np.allclose(nearest_boundary(d, correct), [0.6, 1.4])
    # exact: moving sample 0 by just over 0.6 towards class 1 (along -(w0 - w1)/5) flips it, just under does not
    step = -(W[0] - W[1]) / 5
    assert int(((features[0] + 0.601 * step) @ W.T + B).argmax()) == 1
    assert int(((features[0] + 0.599 * step) @ W.T + B).argmax()) == 0
    means = class_means(np.array([[1.0, 2.0], [3.0, np.nan], [5.0, 6.0]]), [0, 0, 1], 3)
    assert np.allclose(means, [[2, 2], [5, 6], [np.nan, np.nan]], equal_nan=True)


def test_sparsity_curve_tail_mass_and_runner_up_on_known_probabilities():
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.6, 0.3]])
    curve = sparsity_curve(probs)
    assert np.allclose(curve, [0.65, 0.25, 0.1]) and tail_mass(curve) == pytest.approx(0.1)
    matrix = runner_up_matrix(probs, [0, 1], 3)
    assert np.allclose(matrix, [[0.7, 0.2, 0.1], [0.1, 0.6, 0.3], [np.nan] * 3], equal_nan=True)
    assert runner_up_concentration(matrix) == pytest.approx((0.2 / 0.3 + 0.3 / 0.4) / 2)


def test_sorted_mean_probabilities_in_any_batch_size():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 5))
    x = torch.rand(7, 3, 2, 2)
    curve = sorted_mean_probabilities(model, x, batch_size=3)
    with torch.no_grad():
        by_hand = model(x).softmax(dim=1).sort(dim=1, descending=True).values.mean(dim=0)
    assert torch.allclose(curve, by_hand, atol=1e-6) and torch.allclose(curve.sum(), torch.tensor(1.0))
    assert np.allclose(sparsity_curve(model(x).softmax(1).detach()), by_hand, atol=1e-6)


def test_silhouette_of_two_known_clusters():
    features = np.array([[0.0], [1.0], [10.0], [11.0]])
    expected = (2 - 1 / 10.5 - 1 / 9.5) / 2  # points 0 and 11: a = 1, b = 10.5; points 1 and 10: b = 9.5
    assert silhouette(features, [0, 0, 1, 1]) == pytest.approx(expected)
    assert math.isnan(silhouette(features, [0, 0, 0, 0]))


@pytest.mark.parametrize("name", sorted(CLASSIFIERS))
def test_every_architecture_has_a_final_linear_layer_whose_input_gives_the_logits(name):
    torch.manual_seed(0)
    model = build_classifier(name, 10, image_size=32).eval()
    out = forward_features(model, torch.rand(2, 3, 32, 32), batch_size=1)
    assert out["weight"].shape == (10, out["features"].shape[1])
    assert torch.allclose(out["features"] @ out["weight"].T + out["bias"], out["logits"], atol=1e-4)


def test_a_network_without_a_final_linear_layer_is_one_line():
    for model in (nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.ReLU()), nn.Sequential(nn.Conv2d(1, 3, 2))):
        with pytest.raises(NatError, match=r"needs a network whose output is the output of an nn.Linear") as err:
            final_linear(model, torch.rand(1, 1, 2, 2))
        assert "\n" not in str(err.value)
    model = linear_model()
    assert final_linear(model, torch.rand(1, 2)) is model[1]


def test_unknown_figures_are_refused():
    assert parse_figures("umap, sparsity") == ["sparsity", "umap"]
    with pytest.raises(NatError, match=r"unknown figure\(s\) \['bogus'\]; expected some of sparsity,"):
        parse_figures("sparsity,bogus")


def test_analysis_writes_every_figure_json_and_markdown_and_leaves_the_rng_alone(tmp_path):
    generator = torch.Generator().manual_seed(0)
    y = torch.arange(60) % 3
    x = W[y] / 3 + 0.3 * torch.randn(60, 2, generator=generator)  # features near each class's direction
    models = {"A": linear_model(), "B": linear_model(2 * W, B)}   # B: the same boundaries, twice the gaps
    torch.manual_seed(123)
    np.random.seed(7)
    report, table = analyze_models(models, x, y, tmp_path, attack=dict(eps=0.1, alpha=0.05, steps=2),
                                   umap_points=40, log=lambda *a: None)
    after = torch.rand(3), np.random.rand(2)
    torch.manual_seed(123)
    np.random.seed(7)
    assert torch.equal(after[0], torch.rand(3)) and np.array_equal(after[1], np.random.rand(2))
    names = ["sparsity", "hyperplanes", "umap", "boundary", "weights", "runner_up"]
    for name in names:
        content = (tmp_path / f"{name}.png").read_bytes()
        assert content[:8] == PNG and len(content) > 5000
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([f"{n}.png" for n in names]
                                                                + ["analysis.json", "analysis.md"])
    saved = json.loads((tmp_path / "analysis.json").read_text())
    a, b = saved["models"]["A"], saved["models"]["B"]
    assert np.allclose(a["weight_gaps"], weight_gaps(W))
    assert b["mean_weight_gap"] == pytest.approx(2 * a["mean_weight_gap"])
    assert a["mean_shortest_distance"] == pytest.approx(2.0)  # (3 + 0 + 3) / 3 over the pairs
    assert a["boundary_distances"][0][0] is None  # NaN on the diagonal is null in the JSON
    assert a["silhouette"] == pytest.approx(b["silhouette"])  # same features
    assert len(a["umap"]) == 40 and a["tail_mass_adversarial"] >= 0 and a["curve_adversarial"] is not None
    assert report["captions"]["hyperplanes"].startswith("Fig. 4")
    markdown = (tmp_path / "analysis.md").read_text()
    assert "| A |" in markdown and "mean shortest hyperplane distance" in markdown and "eq. 12" in markdown
    assert table in markdown


def test_umap_is_reproducible_with_its_seed():
    features = np.random.default_rng(0).normal(size=(40, 8))
    first = umap_embedding(features, seed=3)
    assert first.shape == (40, 2) and np.array_equal(first, umap_embedding(features, seed=3))


def test_the_demo_sparsity_plot_is_a_png_written_atomically(tmp_path):
    plot_sparsity({"a": [0.7, 0.2, 0.1], "b": [0.5, 0.3, 0.2]}, tmp_path / "s.png")
    assert (tmp_path / "s.png").read_bytes()[:8] == PNG
    assert [p.name for p in tmp_path.iterdir()] == ["s.png"]
