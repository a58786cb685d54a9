"""tools/analyze_cls.py end to end on tiny checkpoints: figures, JSON, Markdown, one-line errors."""
import json

import pytest
import torch

from nat_tasks.cls.models.architectures import build_classifier
from .train_helpers import write_cifar10, write_config

FIGURES = ("sparsity", "hyperplanes", "umap", "boundary", "weights", "runner_up")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A small-CNN config on tiny CIFAR data; a trainer checkpoint, a plain state_dict, a mobilenet's."""
    tmp = tmp_path_factory.mktemp("analyze")
    config = write_config(tmp / "at.py", data_root=write_cifar10(str(tmp / "data")))
    torch.manual_seed(0)
    trainer = {f"classifier.{k}": v for k, v in build_classifier("small_cnn", 10).state_dict().items()}
    torch.save(dict(meta=dict(epoch=1), state_dict=trainer), tmp / "epoch_1.pth")
    torch.save(build_classifier("small_cnn", 10).state_dict(), tmp / "plain.pth")
    torch.save(build_classifier("mobilenet_v2", 10).state_dict(), tmp / "mobilenet.pth")
    return tmp, config


def test_the_tool_writes_every_figure_and_the_scalars_of_each_model(setup, tmp_path, capsys, load_tool):
    tmp, config = setup
    out = tmp_path / "out"
    load_tool("analyze_cls").main([config, str(tmp / "epoch_1.pth"), config, str(tmp / "plain.pth"), "--labels", "AT,NAT",
                      "--n-examples", "20", "--umap-points", "20", "--steps", "2", "--device", "cpu",
                      "--out", str(out), "--class", "3"])
    captured = capsys.readouterr()
    assert "features of AT" in captured.err  # the progress bar of the feature pass
    for name in FIGURES:
        assert (out / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = json.loads((out / "analysis.json").read_text())
    assert list(report["models"]) == ["AT", "NAT"] and report["n_examples"] == 20 and report["reference_class"] == 3
    assert report["attack"] == dict(eps=8 / 255, alpha=2 / 255, steps=2)  # the config's val_attack, --steps
    for entry in report["models"].values():
        assert len(entry["weight_gaps"]) == 10 and len(entry["umap"]) == 20 and entry["feature_dim"] == 128
    # The numbers are each checkpoint's own: the gaps of its final layer's rows, ||w_i - w_j||.
    for label, path in (("AT", tmp / "epoch_1.pth"), ("NAT", tmp / "plain.pth")):
        state = torch.load(path, weights_only=True)
        state = state.get("state_dict", state)
        weight = [v for k, v in state.items() if k.endswith("weight") and v.dim() == 2][-1]
        expected = torch.cdist(weight.double(), weight.double())
        torch.testing.assert_close(torch.tensor(report["models"][label]["weight_gaps"], dtype=torch.float64),
                                   expected, rtol=1e-5, atol=1e-6)
    markdown = (out / "analysis.md").read_text()
    assert "| AT |" in markdown and "| NAT |" in markdown and "feature silhouette" in markdown
    assert "| NAT |" in captured.out


def test_a_subset_of_figures(setup, tmp_path, load_tool):
    tmp, config = setup
    load_tool("analyze_cls").main([config, str(tmp / "plain.pth"), "--figures", "weights,hyperplanes", "--n-examples", "10",
                      "--device", "cpu", "--out", str(tmp_path), "--no-progress"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["analysis.json", "analysis.md", "hyperplanes.png",
                                                          "weights.png"]


@pytest.mark.parametrize("args, fragment", [
    (["--labels", "VT,AT,NAT"], "--labels gives 3 label(s) for 2 model(s)"),
    (["--figures", "sparsity,fig9"], "unknown figure(s) ['fig9']; expected some of sparsity,hyperplanes,umap"),
    (["--class", "10"], "--class 10 is not a class of these models (0..9)"),
])
def test_bad_options_are_one_line(setup, tmp_path, tool_error, args, fragment):
    tmp, config = setup
    err = tool_error("analyze_cls", config, tmp / "plain.pth", config, tmp / "epoch_1.pth", "--n-examples", 4,
                     "--figures", "weights", "--device", "cpu", "--out", tmp_path, *args)
    assert err.count("\n") == 1 and err.startswith("error: ") and fragment in err, err


@pytest.mark.parametrize("models, fragment", [
    (["CONFIG"], "expected CONFIG CKPT pairs, got 1 path(s)"),
    (["CONFIG", "mobilenet.pth"], "does not fit the model"),  # a checkpoint of another architecture
    (["CONFIG", "missing.pth"], "checkpoint not found"),
])
def test_bad_models_are_one_line(setup, tmp_path, tool_error, models, fragment):
    tmp, config = setup
    paths = [config if m == "CONFIG" else tmp / m for m in models]
    err = tool_error("analyze_cls", *paths, "--figures", "weights", "--device", "cpu", "--out", tmp_path)
    assert err.count("\n") == 1 and err.startswith("error: ") and fragment in err, err
