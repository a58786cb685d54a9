"""Output-probability sparsity (sparsity.py): the sorted mean softmax curve and its plot."""
import torch

from nat_tasks.cls.sparsity import plot_sparsity, sorted_mean_probabilities


def test_the_curve_is_the_mean_of_sorted_probabilities_in_any_batch_size():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 5))
    x = torch.rand(7, 3, 2, 2)
    curve = sorted_mean_probabilities(model, x, batch_size=3)
    with torch.no_grad():
        by_hand = model(x).softmax(dim=1).sort(dim=1, descending=True).values.mean(dim=0)
    assert torch.allclose(curve, by_hand, atol=1e-6) and torch.allclose(curve.sum(), torch.tensor(1.0))
    assert (curve[:-1] >= curve[1:]).all()


def test_plot_is_a_png_written_atomically(tmp_path):
    plot_sparsity({"a": [0.7, 0.2, 0.1], "b": [0.5, 0.3, 0.2]}, tmp_path / "s.png")
    assert (tmp_path / "s.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["s.png"]
