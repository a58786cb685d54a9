"""tools/eval_cls.py end to end: reports (with how the checkpoint was selected), the --checklist
table, the config's NAT settings in nat-adaptive, one-line errors; a killed run resumed, a run in 2
processes and --transfer-from give the numbers of one straight run."""
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch

from nat_tasks.cls import classifier_from_config, load_cls_config
from nat_tasks.cls.models.architectures import build_classifier
from nat_tasks.runtime.seeding import batch_seed
from nat_tasks.core.attacks import pgd
from .train_helpers import REPO, assert_one_line_error, run_tool, write_cifar10, write_config


@pytest.fixture(scope="module")
def checkpoint_setup(tmp_path_factory):
    """A NAT config on tiny CIFAR data, a target checkpoint in our format, a plain adversary state_dict."""
    tmp = tmp_path_factory.mktemp("eval")
    data = write_cifar10(str(tmp / "data"))
    torch.manual_seed(0)
    torch.save(build_classifier("small_cnn", 10).state_dict(), tmp / "adversary.pth")
    target = build_classifier("small_cnn", 10)
    torch.save(dict(meta=dict(epoch=1), state_dict={f"classifier.{k}": v for k, v in target.state_dict().items()}),
               tmp / "epoch_1.pth")
    config = write_config(tmp / "nat.py", base="cifar10_preact18_nat.py", data_root=data,
                          model=dict(nasty=dict(adversary=dict(arch="small_cnn", checkpoint=str(tmp / "adversary.pth")))))
    return tmp, config


def evaluate(config, checkpoint, out, *args):
    return run_tool("eval_cls.py", config, checkpoint, "--n-examples", 20, "--batch-size", 10, "--device", "cpu",
                    "--out", out, *args)


def test_eval_cli_writes_json_and_markdown_and_keeps_them_on_failure(checkpoint_setup, tmp_path):
    tmp, config = checkpoint_setup
    out = tmp_path / "out"
    proc = evaluate(config, tmp / "epoch_1.pth", out, "--attacks", "clean,pgd3,cw3,nat-adaptive3")
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((out / "eval_epoch_1.json").read_text())
    assert report["n_examples"] == 20 and report["threat"]["eps"] == pytest.approx(8 / 255)
    assert [r["attack"] for r in report["results"]] == ["clean", "pgd3", "cw3", "nat-adaptive3"]
    assert "eq. 14; w=0.006, tau=4.0" in report["results"][3]["settings"]
    assert all(len(r["flags"]) == 20 for r in report["results"])
    assert report["model_selection"].startswith("not recorded")  # meta without model_selection
    table = (out / "eval_epoch_1.md").read_text()
    assert "| pgd3 |" in table and "PGD-3 (CE), Linf eps=0.03137 (8/255)" in table and "95 % CI" in table
    assert "pgd3" in proc.stdout and "alpha=0.007843" in proc.stdout  # settings printed with the result
    before = (out / "eval_epoch_1.json").read_text()
    for bad_args, fragment in ((["--attacks", "clean,bogus"], "unknown classification attack 'bogus'"),
                               (["--eps", "2"], "eps=2.0 is outside [0,")):
        proc = run_tool("eval_cls.py", config, tmp / "epoch_1.pth", "--out", out, "--n-examples", 4, *bad_args)
        assert_one_line_error(proc, fragment)
    assert (out / "eval_epoch_1.json").read_text() == before
    assert not [f for f in os.listdir(out) if f.startswith(".tmp_")]


def test_nat_adaptive_reads_the_configs_nasty_settings(checkpoint_setup, tmp_path):
    tmp, config = checkpoint_setup
    settings = {}
    for weight in (None, 50.0):
        options = [] if weight is None else ["--cfg-options", f"model.nasty.weight={weight}", "model.nasty.tau=2.0"]
        out = tmp_path / str(weight)
        proc = evaluate(config, tmp / "epoch_1.pth", out, "--attacks", "nat-adaptive3", *options)
        assert proc.returncode == 0, proc.stderr[-3000:]
        (result,) = json.loads((out / "eval_epoch_1.json").read_text())["results"]
        settings[weight] = result["settings"]
    assert "w=0.006, tau=4.0, tau^2 on" in settings[None]  # the config's (NAT's defaults)
    assert "w=50.0, tau=2.0, tau^2 on" in settings[50.0]


@pytest.mark.parametrize("args,fragments", [
    (["--attacks", "nat-adaptive"], ["nat-adaptive needs a NAT config (model.nasty)"]),
    (["--attacks", "transfer-pgd3"], ["transfer-* attacks need --surrogate CONFIG:CHECKPOINT"]),
    (["--attacks", "pgd0"], ["attack 'pgd0': steps must be at least 1"]),
    (["--device", "tpu"], ["--device 'tpu'"]),
])
def test_mistakes_are_one_line_before_any_work(checkpoint_setup, tool_error, tmp_path, args, fragments):
    tmp, _ = checkpoint_setup
    plain = write_config(tmp_path / "pgdat.py", data_root=str(tmp / "data"))
    err = tool_error("eval_cls", plain, tmp / "nowhere.pth", "--n-examples", 20, "--device", "cpu",
                     "--out", tmp_path / "out", *args)  # the checkpoint is never read
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and all(f in lines[0] for f in fragments), err


def test_an_old_nat_config_names_the_new_keys(checkpoint_setup, tmp_path):
    tmp, _ = checkpoint_setup
    old = write_config(tmp_path / "old.py", data_root=str(tmp / "data"),
                       model=dict(method=dict(type="nat", w=0.006), adversary=dict(arch="small_cnn", checkpoint="a.pth")))
    proc = evaluate(old, tmp / "epoch_1.pth", tmp_path / "out", "--attacks", "clean")
    assert_one_line_error(proc, "model.adversary was moved: use model.nasty.adversary")


# ---- --threat l0 ----------------------------------------------------------------------------------

def test_l0_evaluation_writes_the_same_report_with_iteration_and_query_counts(checkpoint_setup, tmp_path):
    tmp, config = checkpoint_setup
    out = tmp_path / "out"
    proc = evaluate(config, tmp / "epoch_1.pth", out, "--threat", "l0", "--k", 5,
                    "--attacks", "clean,spgd5,spgd-proj5,sparse-rs20,saa5q20")
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((out / "eval_epoch_1.json").read_text())
    assert report["threat"] == {"norm": "L0", "k": 5} and report["n_examples"] == 20
    assert [r["attack"] for r in report["results"]] == ["clean", "spgd5", "spgd-proj5", "sparse-rs20", "saa5q20"]
    assert all(len(r["flags"]) == 20 for r in report["results"])
    table = (out / "eval_epoch_1.md").read_text()
    assert "| spgd5 |" in table and "sPGD (unprojected), 5 it, patience 3" in table and "95 % CI" in table
    assert "Sparse-RS, 20 q, p_init=0.8, CE loss, L0 k=5 pixels" in table
    assert "sPGD unprojected (5 it) -> sPGD projected (5 it), CE, patience 3 -> Sparse-RS (20 q" in proc.stdout
    assert "L0 k=5 pixels, seed 0" in proc.stdout


@pytest.mark.parametrize("args,fragment", [
    (["--threat", "l0"], "--threat l0 needs --k (the budget in pixel locations"),
    (["--threat", "l0", "--k", "0"], "k=0 must be a whole number of pixels, at least 1"),
    (["--threat", "l0", "--k", "1025"], "--k 1025 is more than the 32x32 = 1024 pixel locations"),
    (["--threat", "l0", "--k", "20", "--attacks", "clean,pgd20"], "attack 'pgd20' is an Linf attack, the threat"),
    (["--attacks", "spgd"], "attack 'spgd' is an L0 attack, the threat model is Linf"),
    (["--threat", "l0", "--k", "20", "--attacks", "spgd,sparse-l1"], "unknown classification attack 'sparse-l1'"),
    (["--k", "20"], "--k is the l0 budget: add --threat l0"),
    (["--threat", "l2"], "--threat 'l2': expected linf or l0"),
    (["--threat", "l0", "--k", "20", "--eps", "0.1"], "--eps/--alpha set the Linf threat model"),
])
def test_l0_mistakes_are_one_line(checkpoint_setup, tool_error, args, fragment):
    tmp, config = checkpoint_setup
    err = tool_error("eval_cls", config, tmp / "epoch_1.pth", "--n-examples", 4, "--device", "cpu",
                     "--out", tmp / "never", *args)
    lines = [line for line in err.strip().splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], err
    assert not (tmp / "never").exists()


# ---- a kill, torchrun, --transfer-from: every run gives the numbers of one straight run -----------

N, BATCH = 18, 4  # 5 batches, the last one short: under 2 processes one rank idles on the last step
WHITE_BOX = "clean,pgd5,apgd-ce-5"  # apgd-ce: pyautoattack, batch by batch through the state


def train_on(x, y, model, steps=10):
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    return model.eval()


def read_test_split(data):
    """The test split read straight from the pickle, as [0, 1] tensors (no data pipeline)."""
    with open(os.path.join(data, "cifar-10-batches-py", "test_batch"), "rb") as f:
        batch = pickle.load(f, encoding="bytes")
    return torch.from_numpy(batch[b"data"].reshape(-1, 3, 32, 32)).float() / 255, torch.tensor(batch[b"labels"])


@pytest.fixture(scope="module")
def robust_setup(tmp_path_factory):
    """Learnable CIFAR-format data, a target fitted to its test images (so some examples are
    correct and some survive the attacks), a surrogate close to it (the same start, 4 more steps:
    its examples transfer) and an untrained one (its examples hardly do); the arguments of one
    evaluation and its straight run's report."""
    tmp = tmp_path_factory.mktemp("robust")
    data = write_cifar10(str(tmp / "data"))
    config = write_config(tmp / "cfg.py", data_root=data)
    model_cfg = load_cls_config(config).model
    x, y = read_test_split(data)
    for name, seed, steps in (("target", 0, 10), ("fitted", 0, 14), ("untrained", 2, 0)):
        torch.manual_seed(seed)
        model = train_on(x, y, classifier_from_config(model_cfg), steps)
        state = model.state_dict() if name != "target" else {f"classifier.{k}": v for k, v in model.state_dict().items()}
        torch.save(state if name != "target" else dict(meta=dict(epoch=1), state_dict=state), tmp / f"{name}.pth")
    specs = [f"{config}:{tmp / 'fitted.pth'}", f"{config}:{tmp / 'untrained.pth'}"]
    args = [config, tmp / "target.pth", "--attacks", WHITE_BOX, "--n-examples", N, "--batch-size", BATCH,
            "--eps", 0.08, "--alpha", 0.02, *[a for spec in specs for a in ("--transfer-from", spec)]]
    with pytest.MonkeyPatch.context() as env:
        env.setenv("OMP_NUM_THREADS", "1")  # as under torchrun: the same float reductions everywhere
        proc = run_tool("eval_cls.py", *args, "--device", "cpu", "--out", tmp / "straight")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return dict(tmp=tmp, data=data, config=config, model_cfg=model_cfg, specs=specs, args=args,
                report=json.loads((tmp / "straight" / "eval_target.json").read_text()))


def same_numbers(report, straight):
    def numbers(r):
        return ([(x["attack"], x["correct"], x["n"], x["flags"], x["settings"]) for x in r["results"]],
                r["worst_case"]["flags"], r["examples"])
    assert numbers(report) == numbers(straight)


def tool_env():
    pythonpath = os.pathsep.join(p for p in (REPO, os.environ.get("PYTHONPATH")) if p)
    return dict(os.environ, CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="1", PYTHONPATH=pythonpath)


def batches_done(state_path):
    try:
        flags = json.loads(state_path.read_text())["flags"].values()
    except FileNotFoundError:
        return 0
    return sum(f[start] is not None for f in flags for start in range(0, N, BATCH))


def test_straight_run_reports_every_attack_and_the_per_example_flags(robust_setup):
    report, specs = robust_setup["report"], robust_setup["specs"]
    names = [r["attack"] for r in report["results"]]
    assert names == ["clean", "pgd5", "apgd-ce-5"] + [f"transfer-{a} from {s}" for s in specs for a in ("pgd20", "cw")]
    clean = report["results"][0]["flags"]
    assert len(report["examples"]) == N and 0 < sum(report["results"][1]["flags"]) < sum(clean) < N
    assert report["worst_case"]["flags"] == [all(f) for f in zip(*(r["flags"] for r in report["results"]))]
    assert "crafted on " + specs[0] + " (transfer)" in report["results"][3]["settings"]
    state = json.loads((robust_setup["tmp"] / "straight" / "eval_target.state.json").read_text())
    assert state["clean"] == clean and state["robust_all"] == report["worst_case"]["flags"]


def test_a_killed_evaluation_resumes_to_the_numbers_of_the_straight_run(robust_setup, tmp_path):
    out = tmp_path / "out"
    state = out / "eval_target.state.json"
    command = [sys.executable, os.path.join(REPO, "tools", "eval_cls.py"), *map(str, robust_setup["args"]),
               "--device", "cpu", "--out", str(out)]
    proc = subprocess.Popen(command, cwd=REPO, env=tool_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    while proc.poll() is None and batches_done(state) < 7:  # clean done, pgd5 under way
        time.sleep(0.01)
    proc.kill()
    stderr = proc.communicate()[1].decode()
    assert proc.returncode == -signal.SIGKILL, stderr[-3000:]
    done = batches_done(state)
    assert 7 <= done < 35 and not (out / "eval_target.json").exists()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("OMP_NUM_THREADS", "1")
        resumed = run_tool("eval_cls.py", *robust_setup["args"], "--device", "cpu", "--out", out, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"--resume: continuing {state} (" in resumed.stdout
    same_numbers(json.loads((out / "eval_target.json").read_text()), robust_setup["report"])


def test_two_processes_give_the_numbers_of_one(robust_setup, tmp_path, torchrun):
    out = tmp_path / "out"
    log = torchrun("eval_cls", *robust_setup["args"], "--out", out)
    assert "2 processes" in log
    assert sorted(os.listdir(out)) == ["eval_target.json", "eval_target.md", "eval_target.state.json"]
    same_numbers(json.loads((out / "eval_target.json").read_text()), robust_setup["report"])


def test_transfer_attacks_are_the_surrogates_examples_counted_on_the_target(robust_setup):
    """Recomputed without the tool: PGD-20 / CW-20 on each surrogate, batch by batch with the
    batch seeds, classified by the target."""
    report, specs = robust_setup["report"], robust_setup["specs"]
    x, y = read_test_split(robust_setup["data"])
    x, y = x[report["examples"]], y[report["examples"]]
    target = classifier_from_config(robust_setup["model_cfg"], robust_setup["tmp"] / "target.pth").eval()
    results = {r["attack"]: r for r in report["results"]}
    transferred = {}
    for spec in specs:
        surrogate = classifier_from_config(robust_setup["model_cfg"], spec.rpartition(":")[2]).eval()
        for base, loss in (("pgd20", "ce"), ("cw", "cw")):
            flags = []
            for b, start in enumerate(range(0, N, BATCH)):
                xb, yb = x[start:start + BATCH], y[start:start + BATCH]
                torch.manual_seed(batch_seed(0, b))
                x_adv = pgd(surrogate, xb, yb, eps=0.08, alpha=0.02, steps=20, loss=loss)
                with torch.no_grad():
                    flags += ((target(xb).argmax(1) == yb) & (target(x_adv).argmax(1) == yb)).tolist()
            assert results[f"transfer-{base} from {spec}"]["flags"] == flags, (base, spec)
            transferred[spec, base] = sum(flags)
    # the fitted surrogate's examples transfer, the untrained one's hardly: each used its own model
    assert transferred[specs[0], "pgd20"] < transferred[specs[1], "pgd20"] <= results["clean"]["correct"]


@pytest.mark.parametrize("args,fragment", [
    (["--transfer-from", "nocolon"], "--transfer-from expects CONFIG:CHECKPOINT, got 'nocolon'"),
    (["--transfer-from", "{config}:{tmp}/missing.pth"], "checkpoint file not found: "),
    (["--transfer-from", "{tmp}/missing.py:{tmp}/target.pth"], "config file not found: "),
    (["--transfer-from", "{config}:{tmp}/target.pth"] * 2, "is given twice"),
    (["--threat", "l0", "--k", "5", "--transfer-from", "{config}:{tmp}/target.pth"],
     "attack 'transfer-pgd20' is an Linf attack, the threat model is L0"),
    (["--checklist", "--resume"], "--resume continues an attack evaluation; the --checklist runs afresh"),
    (["--launcher", "pytorch"], "--launcher pytorch runs under torchrun (missing RANK"),
    (["--launcher", "pytorch", "--device", "cuda:1"], "each process uses the GPU of its LOCAL_RANK"),
    (["--launcher", "ssh"], "--launcher 'ssh': expected one of none, pytorch, slurm, mpi"),
])
def test_transfer_and_launch_mistakes_are_one_line(robust_setup, tool_error, tmp_path, args, fragment):
    names = dict(config=robust_setup["config"], tmp=robust_setup["tmp"])
    err = tool_error("eval_cls", robust_setup["config"], robust_setup["tmp"] / "target.pth", "--n-examples", 4,
                     "--out", tmp_path / "never", *[a.format(**names) for a in args])
    lines = [line for line in err.strip().splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], err
    assert not (tmp_path / "never").exists()


def test_a_resume_with_other_settings_is_one_line(robust_setup, tool_error, tmp_path):
    shutil.copytree(robust_setup["tmp"] / "straight", tmp_path / "out")
    err = tool_error("eval_cls", *robust_setup["args"], "--device", "cpu", "--out", tmp_path / "out", "--resume",
                     "--seed", 1)
    assert err.strip().count("\n") == 0 and "was made with other settings (seed: 0 -> 1)" in err, err


def test_checklist_report_with_the_surrogates_transfer_attacks_and_the_model_selection(tmp_path):
    config = write_config(tmp_path / "cfg.py", data_root=write_cifar10(str(tmp_path / "data")))
    torch.manual_seed(0)
    state = {f"classifier.{k}": v for k, v in build_classifier("small_cnn", 10).state_dict().items()}
    checkpoint = tmp_path / "epoch_1.pth"
    torch.save(dict(meta=dict(epoch=1, model_selection="test-selected"), state_dict=state), checkpoint)
    proc = run_tool("eval_cls.py", config, checkpoint, "--checklist", "--n-examples", 8, "--square-queries", 20,
                    "--surrogate", f"{config}:{checkpoint}", "--device", "cpu", "--out", tmp_path / "out")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "model selection of this checkpoint: test-selected" in proc.stdout
    report = json.loads((tmp_path / "out" / "eval_epoch_1_checklist.json").read_text())
    assert report["model_selection"] == "test-selected"
    assert [c["name"] for c in report["checks"]] == [
        "aa <= every weaker attack", "PGD-20 accuracy falls with eps", "unbounded PGD-100 (eps=1) reaches ~0 %",
        "more PGD steps not weaker", "more PGD restarts not weaker", "black-box not stronger than white-box",
        "pgd20 - aa gap <= 5 points"]
    attacks = {(r["attack"], round(r["eps"], 4)) for r in report["results"]}
    assert {("transfer-pgd20", 0.0314), ("transfer-cw20", 0.0314), ("square20", 0.0314), ("pgd20", 0.1255),
            ("pgd100", 1.0)} <= attacks
    assert "transfer-pgd20" in next(c for c in report["checks"] if c["name"].startswith("black-box"))["detail"]
    table = (tmp_path / "out" / "eval_epoch_1_checklist.md").read_text()
    assert "Model selection: test-selected." in table and "| check | result | detail |" in table
