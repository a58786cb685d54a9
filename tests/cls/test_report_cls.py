"""tools/report_cls.py end to end on a tiny fitted model: the report's numbers are eval_cls's, the
worst case is the per-example AND over every attack at the budget, a second run reads everything
back (no attack, no figure computed again), and the page is self-contained and opens in a real
headless browser with every image loaded and no console error."""
import json
import re

import pytest
import torch
from browser import open_page

from nat_tasks.cls import classifier_from_config, load_cls_config
from .test_eval_cls import read_test_split, train_on
from .train_helpers import write_cifar10, write_config

N, BATCH, EPS, ALPHA = 12, 6, 0.08, 0.02
ATTACKS = "clean,pgd5,apgd-ce-5"  # apgd-ce: pyautoattack's code, as in eval_cls's tests


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """Learnable CIFAR-format data, a target fitted to its test images (some examples correct, some
    robust) in a trainer checkpoint with its model selection, and a surrogate (the same start, 4 more
    steps: its examples transfer)."""
    tmp = tmp_path_factory.mktemp("report")
    data = write_cifar10(str(tmp / "data"))
    config = write_config(tmp / "cfg.py", data_root=data)
    x, y = read_test_split(data)
    for name, steps in (("target", 10), ("surrogate", 14)):
        torch.manual_seed(0)
        model = train_on(x, y, classifier_from_config(load_cls_config(config).model), steps)
        state = {f"classifier.{k}": v for k, v in model.state_dict().items()}
        torch.save(dict(meta=dict(epoch=1, model_selection="validation (n=20)"), state_dict=state),
                   tmp / f"{name}.pth")
    return tmp, config


def common(config, tmp):
    return [config, tmp / "target.pth", "--attacks", ATTACKS, "--n-examples", N, "--batch-size", BATCH,
            "--eps", EPS, "--alpha", ALPHA, "--device", "cpu"]


def report_args(config, tmp, out):
    return [*common(config, tmp), "--out", out, "--labels", "NAT", "--strongest", "apgd-ce-5", "--square-queries", 10,
            "--surrogate", f"{config}:{tmp / 'surrogate.pth'}", "--figures", "sparsity,weights",
            "--analysis-examples", 16]


def run(load_tool, tool, args):
    load_tool(tool).main([str(a) for a in args])


def test_the_report_is_eval_cls_numbers_and_a_rerun_computes_nothing(setup, tmp_path, load_tool, monkeypatch,
                                                                     one_thread):
    tmp, config = setup
    run(load_tool, "eval_cls", [*common(config, tmp), "--out", tmp_path / "eval"])
    evaluated = json.loads((tmp_path / "eval" / "eval_target.json").read_text())
    out = tmp_path / "report"
    run(load_tool, "report_cls", report_args(config, tmp, out))
    report = json.loads((out / "report.json").read_text())
    (model,) = report["models"]
    assert model["label"] == "NAT" and model["model_selection"] == "validation (n=20)"
    assert model["examples"] == evaluated["examples"]

    def numbers(result):
        return {k: v for k, v in result.items() if k != "seconds"}

    results = {r["attack"]: r for r in model["results"]}
    assert [numbers(results[r["attack"]]) for r in evaluated["results"]] == \
        [numbers(r) for r in evaluated["results"]]
    clean = results["clean"]["flags"]
    assert 0 < sum(results["pgd5"]["flags"]) < sum(clean) < N  # the numbers say something
    assert list(results) == ["clean", "pgd5", "apgd-ce-5", "transfer-pgd20", "transfer-cw20"]
    assert model["transfer"] == ["transfer-pgd20", "transfer-cw20"]

    # the worst case: robust under every attack at the budget, the table's and the checklist's
    checklist = model["checklist"]
    at_budget = {r["attack"]: r["flags"] for r in checklist["results"] if r["eps"] == EPS}
    at_budget.update({name: r["flags"] for name, r in results.items()})
    assert {"pgd100", "pgd20x5", "cw20", "square10"} <= set(at_budget)
    assert sorted(model["worst_case"]["attacks"]) == sorted(at_budget)
    assert model["worst_case"]["flags"] == [all(f) for f in zip(*at_budget.values())]
    assert evaluated["worst_case"]["flags"] == [all(f) for f in zip(*(r["flags"] for r in evaluated["results"]))]
    assert len(checklist["checks"]) == 7 and {c["name"] for c in checklist["checks"]} >= {
        "apgd-ce-5 <= every weaker attack", "black-box not stronger than white-box"}
    assert report["analysis"]["figures"] == ["sparsity", "weights"] and list(report["analysis"]["models"]) == ["NAT"]
    assert re.fullmatch(r"[0-9a-f]{12}( with uncommitted changes)?|nat_tasks .*", report["code_version"]["text"])

    # run again with the same --out: every attack and the figures are read back, none computed
    def refuse(*_args, **_kwargs):
        raise AssertionError("computed again")

    monkeypatch.setattr("nat_tasks.cls.evaluation.evaluation._attack_batch", refuse)
    monkeypatch.setattr("nat_tasks.cls.evaluation.robustness_report.analyze_models", refuse)
    run(load_tool, "report_cls", [*report_args(config, tmp, out), "--title", "Again"])
    again = json.loads((out / "report.json").read_text())
    assert again["title"] == "Again"
    assert [numbers(r) for r in again["models"][0]["results"]] == [numbers(r) for r in model["results"]]
    assert again["models"][0]["checklist"]["checks"] == checklist["checks"]

    # one self-contained page that a real browser shows whole
    html = (out / "report.html").read_text()
    assert not re.search(r"https?://", html) and "<script" not in html and "<link" not in html
    sources = re.findall(r'src="([^"]*)"', html)
    assert len(sources) == 2 and all(s.startswith("data:image/png;base64,") for s in sources)
    page = open_page((out / "report.html").as_uri())
    assert page.title == "Again" and page.console_errors == [] and page.broken_images == []
    assert "worst case" in page.text and "black-box not stronger than white-box" in page.text
    assert "| NAT |" in (out / "report.md").read_text()


def test_l0_has_no_checklist_and_mistakes_are_one_line(setup, tmp_path, load_tool, tool_error, one_thread):
    tmp, config = setup
    out = tmp_path / "l0"
    run(load_tool, "report_cls", [config, tmp / "target.pth", "--out", out, "--threat", "l0", "--k", 3,
                                  "--attacks", "clean,spgd5", "--n-examples", 6, "--analysis-examples", 0,
                                  "--device", "cpu"])
    report = json.loads((out / "report.json").read_text())
    (model,) = report["models"]
    assert report["threat"] == dict(norm="L0", k=3) and report["analysis"] is None
    assert [r["attack"] for r in model["results"]] == ["clean", "spgd5"]
    assert model["checklist"] is None and "Linf" in model["checklist_note"]
    for args, fragment in (([config], "expected CONFIG CKPT pairs"),
                           ([config, tmp / "target.pth", "--threat", "l0", "--k", 3, "--surrogate",
                             f"{config}:{tmp / 'surrogate.pth'}"], "--surrogate adds Linf transfer attacks"),
                           ([config, tmp / "target.pth", "--attacks", "clean,bogus"], "unknown classification attack")):
        err = tool_error("report_cls", *args, "--out", tmp_path / "never", "--device", "cpu")
        lines = [line for line in err.strip().splitlines() if line]
        assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], err
