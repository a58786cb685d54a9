"""Seeded sweeps: a grid of config values x seeds, one training run each, one table and one plot.

``run_sweep(config, grid, seeds=3)`` trains every (grid point, seed) with ``tools/train_cls.py`` in
its own work dir ``<work_dir>/<key>=<value>,...,seed=<s>``, then reads each run's validation
metrics back from mmengine's ``scalars.json`` and its checkpoint files, and writes
``sweep.json``, ``sweep.md`` (best and last model per grid point, ``max (mean ± std)`` over
seeds: the format of the paper's Tables 1-2) and ``sweep.png`` (metric vs the swept key, best
and last: the paper's Fig. 2).

Every run is a separate process started by exactly the command ``--print-commands`` lists (what a
user submits as cluster jobs), for two reasons: a crash of one run (an exception, a diverged loss,
a killed job) is recorded as ``failed: <its error line>`` and the sweep goes on; and no state of
one mmengine runner (loggers, registries, a process group) leaks into the next. A run whose last
epoch's checkpoint exists is reused, an interrupted one is resumed (``--resume``).
"""
import argparse
import glob
import itertools
import json
import os
import re
import shlex
import subprocess
import sys
import time

from mmengine.config import DictAction

from nat_tasks.core.adversary import check_adversary_files
from nat_tasks.core.checkpoint import atomic_write_text
from nat_tasks.core.errors import NatError
from nat_tasks.core.stats import seed_summary
from nat_tasks.runtime import markdown_table, write_results
from nat_tasks.runtime.checkout import REPO_ROOT

from nat_tasks.cls.training.nasty_section import nasty_spec, train_command
from nat_tasks.cls.training.train import load_cls_config

TRAIN_TOOL = os.path.join(REPO_ROOT, "tools", "train_cls.py")
METRICS = ("clean_acc", "robust_acc")
MODELS = ("best", "last")  # the paper's two rows per method: the best (selected) and the last epoch
LAUNCHERS = ("none", "pytorch", "slurm")
RECIPE = "sweep_recipe.json"  # in each run's folder: the config and options it was trained with


def parse_options(options, what="--cfg-options"):
    """``['k=v', ...]`` -> ``{k: value}`` with values parsed exactly as ``--cfg-options`` parses
    them (mmengine's ``DictAction``: ints, floats, bools, ``[lists]``, ``a,b`` -> a list)."""
    parser = argparse.ArgumentParser(add_help=False, exit_on_error=False)
    parser.add_argument("--options", nargs="+", action=DictAction)
    for option in options:
        if "=" not in option or not option.split("=", 1)[0]:
            raise NatError(f"{what} {option!r}: expected KEY=VALUE")
    try:
        return vars(parser.parse_args(["--options", *options]))["options"] if options else {}
    except (argparse.ArgumentError, ValueError, AssertionError, RecursionError) as err:
        # DictAction asserts balanced brackets (and recurses without end on '[8],[9]')
        raise NatError(f"{what} {' '.join(options)}: cannot parse ({type(err).__name__}); "
                       "write a list of list values as [[8],[9]]") from None


def parse_grid(specs):
    """``['model.nasty.weight=0,0.02', 'milestones=[[8],[9]]']`` -> ``[(key, [values]), ...]`` in
    the given order. The text after ``=`` parses like a ``--cfg-options`` value; a list (``0,0.02``
    or ``[0,0.02]``) gives the grid values, a single value a one-point grid."""
    grid = []
    for spec in specs:
        ((key, values),) = parse_options([spec], what="--grid").items()
        values = values if isinstance(values, list) else [values]
        if key == "randomness.seed":
            raise NatError("--grid randomness.seed: seeds are swept by --seeds / --seed-start")
        if key in dict(grid):
            raise NatError(f"--grid {key} is given twice: list all its values in one --grid")
        if len(set(map(value_text, values))) < len(values):
            raise NatError(f"--grid {spec}: a value is repeated")
        grid.append((key, values))
    if not grid:
        raise NatError("--grid KEY=V1,V2,... is needed (e.g. model.nasty.weight=0,0.02,0.06)")
    return grid


def value_text(value):
    """A parsed value as ``--cfg-options`` text again (``[1,2]``, ``0.02``, ``True``, ``abc``)."""
    if isinstance(value, (list, tuple)):
        inner = ",".join(value_text(v) for v in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner})"
    return str(value)


def grid_points(grid):
    """Every combination of the grid's values, as ``{key: value}`` dicts (the first key slowest)."""
    keys = [key for key, _ in grid]
    return [dict(zip(keys, combo)) for combo in itertools.product(*(values for _, values in grid))]


def run_name(point, seed):
    """``model.nasty.weight=0.02,seed=1``: the run's folder, readable and unique in the sweep."""
    parts = [f"{key}={value_text(value)}" for key, value in point.items()] + [f"seed={seed}"]
    return ",".join(parts).replace(os.sep, "_")


def plan_runs(config, grid, *, seeds=3, seed_start=0, work_dir=None, cfg_options=(), device=None,
              launcher="none", nproc_per_node=1, srun_args="", train_args=""):
    """The sweep's runs: for each (grid point, seed) a dict with ``point``, ``seed``, ``work_dir``,
    ``max_epochs`` and ``command`` (argv). ``train_args``: more options of ``train_cls.py`` for every
    run (``--amp``, ``--data-root DIR``). Every run's config is loaded first, so a bad key or value,
    or a missing NAT adversary checkpoint, is one line before anything trains."""
    if seeds < 1:
        raise NatError(f"--seeds {seeds}: at least 1")
    if launcher not in LAUNCHERS:
        raise NatError(f"--launcher {launcher}: expected one of {', '.join(LAUNCHERS)}")
    work_dir = work_dir or os.path.join("work_dirs", "sweep_" + os.path.splitext(os.path.basename(config))[0])
    shared = parse_options(list(cfg_options))
    runs = []
    for point in grid_points(grid):
        for seed in range(seed_start, seed_start + seeds):
            run_dir = os.path.join(work_dir, run_name(point, seed))
            cfg = load_cls_config(config, work_dir=run_dir, cfg_options={**shared, **point, "randomness.seed": seed})
            max_epochs = cfg.get("train_cfg", {}).get("max_epochs")
            if not max_epochs:
                raise NatError(f"{config}: a sweep needs an epoch-based train_cfg (train_cfg.max_epochs)")
            spec = nasty_spec(cfg.model)
            if spec is not None:
                check_adversary_files(spec, train_command)
            options = [*cfg_options, *(f"{k}={value_text(v)}" for k, v in point.items()), f"randomness.seed={seed}"]
            argv = [TRAIN_TOOL, config, "--work-dir", run_dir, *shlex.split(train_args), "--cfg-options", *options]
            argv += ["--device", device] if device else []
            recipe = dict(config=config, cfg_options=options, **({"train_args": train_args} if train_args else {}))
            runs.append(dict(point=point, seed=seed, work_dir=run_dir, max_epochs=int(max_epochs),
                             save_best=_selection_key(cfg), recipe=recipe,
                             command=_launch(argv, launcher, nproc_per_node, srun_args)))
    return work_dir, runs


def _launch(argv, launcher, nproc_per_node, srun_args):
    """The command line of one run under ``launcher`` (torchrun / srun start the processes)."""
    if launcher == "pytorch":
        return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
                str(nproc_per_node), *argv, "--launcher", "pytorch"]
    if launcher == "slurm":
        return ["srun", *shlex.split(srun_args), sys.executable, *argv, "--launcher", "slurm"]
    return [sys.executable, *argv]


def _selection_key(cfg):
    """The metric the run's ``CheckpointHook`` keeps the best checkpoint by (robust_acc if unset)."""
    key = cfg.get("default_hooks", {}).get("checkpoint", {}).get("save_best")
    return key if isinstance(key, str) and key in METRICS else "robust_acc"


def is_finished(run):
    """The run's last epoch has its checkpoint. A folder that records another recipe (its name
    holds only the grid's values) is one line, finished or not: it is neither reused nor resumed."""
    recipe = os.path.join(run["work_dir"], RECIPE)
    if os.path.isfile(recipe):
        with open(recipe) as f:
            if json.load(f) != run["recipe"]:
                raise NatError(f"{run['work_dir']} was trained with another config or --cfg-options "
                               f"(see its {RECIPE}): give this sweep its own --work-dir")
    return os.path.isfile(os.path.join(run["work_dir"], f"epoch_{run['max_epochs']}.pth"))


def command_of(run):
    """The run's command line, with ``--resume`` when an interrupted run left a checkpoint."""
    return run["command"] + (["--resume"] if os.path.isfile(os.path.join(run["work_dir"], "last_checkpoint")) else [])


def execute(run):
    """Train one run in its own process; its output is appended to ``<work_dir>/sweep_run.log``
    (every attempt's). Returns ``None``, or the one-line reason it failed."""
    os.makedirs(run["work_dir"], exist_ok=True)
    atomic_write_text(json.dumps(run["recipe"]) + "\n", os.path.join(run["work_dir"], RECIPE))
    command = command_of(run)
    log_path = os.path.join(run["work_dir"], "sweep_run.log")
    env = dict(os.environ, MPLBACKEND="Agg")
    with open(log_path, "a") as out:
        out.write(shlex.join(command) + "\n")
        out.flush()
        start = out.tell()  # where this attempt's output begins
        returncode = subprocess.run(command, cwd=os.getcwd(), env=env, stdout=out, stderr=subprocess.STDOUT).returncode
    if returncode == 0 and is_finished(run):
        return None
    with open(log_path) as f:
        f.seek(start)
        lines = [line.strip() for line in f if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    reason = errors[-1][len("error: "):] if errors else (lines[-1] if lines else "no output")
    if returncode < 0:  # the job was killed (by the user, a scheduler, the OOM killer)
        return f"killed by signal {-returncode}; last output: {reason}"
    return f"exit status {returncode}: {reason}" if returncode else f"no epoch_{run['max_epochs']}.pth: {reason}"


def read_validation(work_dir):
    """``{epoch: {metric: value}}`` from every ``scalars.json`` of a work dir, oldest run first,
    so the entries a resumed run logged again replace the interrupted run's."""
    epochs = {}
    for path in sorted(glob.glob(os.path.join(work_dir, "*", "vis_data", "scalars.json"))):
        with open(path) as f:
            for line in f:
                entry = json.loads(line)
                if "clean_acc" in entry:  # a validation entry; its step is the epoch
                    epochs[int(entry["step"])] = {m: float(entry[m]) for m in METRICS if m in entry}
    return epochs


def collect(run):
    """The run's ``last`` (final epoch) and ``best`` (the epoch of its best checkpoint) metrics."""
    epochs = read_validation(run["work_dir"])
    if run["max_epochs"] not in epochs:
        raise NatError(f"{run['work_dir']}: no validation metrics of epoch {run['max_epochs']} in its scalars.json")
    best = sorted(glob.glob(os.path.join(run["work_dir"], f"best_{run['save_best']}_epoch_*.pth")))
    if best:  # the checkpoint the run kept: its epoch is in its name
        best_epoch = int(re.search(r"_epoch_(\d+)\.pth$", best[-1]).group(1))
    else:  # as mmengine's CheckpointHook chooses: the first epoch with the highest score
        best_epoch = max(sorted(epochs), key=lambda e: epochs[e].get(run["save_best"], float("-inf")))
    return dict(last=dict(epoch=run["max_epochs"], **epochs[run["max_epochs"]]),
                best=dict(epoch=best_epoch, **epochs.get(best_epoch, {})))


def summarise(runs, grid):
    """Per grid point and model (best / last), per metric: max, mean and std over the seeds that
    finished, and the failures."""
    rows = []
    for point in grid_points(grid):
        mine = [r for r in runs if r["point"] == point]
        done = [r for r in mine if r["status"] == "ok"]
        for model in MODELS:
            row = dict(point=point, model=model, runs=f"{len(done)}/{len(mine)}",
                       failed=[f"seed {r['seed']}: {r['status']}" for r in mine if r["status"] != "ok"])
            for metric in METRICS:
                values = [r["metrics"][model][metric] for r in done if metric in r["metrics"][model]]
                row[metric] = dict(max=max(values), values=values, **seed_summary(values)) if values else None
            rows.append(row)
    return rows


def paper_cell(summary):
    """``96.20 (95.93 ± 0.31)``: the best seed, then mean ± std over seeds (the paper's Tables 1-2)."""
    if summary is None:
        return "-"
    if summary["std"] is None:
        return f"{summary['max']:.2f}"
    return f"{summary['max']:.2f} ({summary['mean']:.2f} ± {summary['std']:.2f})"


def tables(rows, runs, grid):
    """The summary table (one row per grid point and model) and the per-run table, in Markdown."""
    keys = [key for key, _ in grid]
    summary = markdown_table(
        [dict({k: value_text(row["point"][k]) for k in keys}, model=row["model"], runs=row["runs"],
              failed="; ".join(row["failed"]) or "-", **{m: paper_cell(row[m]) for m in METRICS}) for row in rows],
        [*((k, k) for k in keys), ("model", "model"), *((m, m) for m in METRICS), ("runs", "seeds ok"),
         ("failed", "failed runs")])

    def cell(run, model, metric):
        return f"{run['metrics'][model][metric]:.2f}" if run["status"] == "ok" and metric in run["metrics"][model] else "-"

    per_run = markdown_table(
        [dict({k: value_text(r["point"][k]) for k in keys}, seed=r["seed"], status=r["status"],
              best_epoch=r["metrics"]["best"]["epoch"] if r["status"] == "ok" else "-",
              **{f"{model}_{m}": cell(r, model, m) for model in MODELS for m in METRICS},
              work_dir=r["work_dir"]) for r in runs],
        [*((k, k) for k in keys), ("seed", "seed"), ("status", "status"),
         *((f"last_{m}", f"last {m}") for m in METRICS), ("best_epoch", "best epoch"),
         *((f"best_{m}", f"best {m}") for m in METRICS), ("work_dir", "work dir")])
    return summary, per_run


def plot(rows, grid, path):
    """Each metric vs the first grid key (one line per model and per combination of the other
    keys; mean ± std over seeds as error bars): the paper's Fig. 2."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    key, values = grid[0]
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    position = {value_text(v): (v if numeric else i) for i, v in enumerate(values)}
    figure, axes = plt.subplots(1, len(METRICS), figsize=(5 * len(METRICS), 3.8), squeeze=False)
    lines = {}
    for row in rows:
        others = ", ".join(f"{k}={value_text(v)}" for k, v in row["point"].items() if k != key)
        lines.setdefault((others, row["model"]), []).append(row)
    for axis, metric in zip(axes[0], METRICS):
        for (others, model), members in lines.items():
            points = [(position[value_text(r["point"][key])], r[metric]) for r in members if r[metric] is not None]
            if not points:
                continue
            xs = [x for x, _ in points]
            means = [s["mean"] for _, s in points]
            stds = [s["std"] or 0.0 for _, s in points]
            label = model + (f" ({others})" if others else "")
            best = model == "best"  # last: hollow squares, so a last point on a best one still shows
            axis.errorbar(xs, means, yerr=stds, capsize=3, linestyle="-" if best else "--", marker="o" if best else "s",
                          markersize=5 if best else 9, markerfacecolor=None if best else "none", label=label)
        positive = sorted(v for v in values if numeric and v > 0)
        if numeric and positive and min(values) >= 0 and max(values) / positive[0] > 20:
            axis.set_xscale("symlog", linthresh=positive[0])  # 0, 0.006, 0.06: spread, keep 0
        if not numeric:
            axis.set_xticks(range(len(values)), [value_text(v) for v in values])
        axis.set_xlabel(key)
        axis.set_ylabel(f"validation {metric} (%)")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.suptitle("mean ± std over seeds", fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def run_sweep(config, grid, *, seeds=3, seed_start=0, work_dir=None, cfg_options=(), device=None,
              launcher="none", nproc_per_node=1, srun_args="", train_args="", collect_only=False, log=print):
    """Train the missing runs of the sweep (unless ``collect_only``), then write and return its
    results: ``<work_dir>/sweep.json`` (every run's metrics, status and command), ``sweep.md``
    and ``sweep.png``."""
    work_dir, runs = plan_runs(config, grid, seeds=seeds, seed_start=seed_start, work_dir=work_dir,
                               cfg_options=cfg_options, device=device, launcher=launcher,
                               nproc_per_node=nproc_per_node, srun_args=srun_args, train_args=train_args)
    start = time.perf_counter()
    for i, run in enumerate(runs, 1):
        name = os.path.basename(run["work_dir"])
        if is_finished(run):
            run["status"] = "ok"
            log(f"[{i}/{len(runs)}] {name}: finished earlier, reused")
        elif collect_only:
            run["status"] = "failed: not run (no finished checkpoint)"
            log(f"[{i}/{len(runs)}] {name}: not run")
        else:
            log(f"[{i}/{len(runs)}] {name}: training ({os.path.join(run['work_dir'], 'sweep_run.log')})")
            began = time.perf_counter()
            reason = execute(run)
            run["status"] = "ok" if reason is None else f"failed: {reason}"
            log(f"[{i}/{len(runs)}] {name}: {run['status']} ({time.perf_counter() - began:.0f} s)")
        run["metrics"] = {}
        if run["status"] == "ok":
            try:
                run["metrics"] = collect(run)
            except NatError as err:  # e.g. validation switched off: reported like a crash
                run["status"] = f"failed: {err}"
    rows = summarise(runs, grid)
    summary_table, per_run_table = tables(rows, runs, grid)
    os.makedirs(work_dir, exist_ok=True)
    plot(rows, grid, os.path.join(work_dir, "sweep.png"))
    report = dict(config=config, grid=[dict(key=k, values=v) for k, v in grid], seeds=list(range(seed_start, seed_start + seeds)),
                  cfg_options=list(cfg_options), train_args=train_args, launcher=launcher, rows=rows,
                  runs=[dict(r, command=shlex.join(r["command"])) for r in runs],
                  seconds=round(time.perf_counter() - start, 1))
    notes = (f"Validation-split metrics of `{config}` (mmengine's scalars.json): *last* = the final epoch, "
             "*best* = the epoch of the run's best checkpoint (selected on the same validation split, so "
             f"optimistic). Cells: best seed (mean ± std over the seeds that finished; seeds {seed_start}..."
             f"{seed_start + seeds - 1}).\n")
    markdown = f"# Sweep of {config}\n\n{summary_table}\n{notes}\n## Runs\n\n{per_run_table}"
    write_results(os.path.join(work_dir, "sweep"), report, markdown)
    failed = sum(r["status"] != "ok" for r in runs)
    log(f"\n{summary_table}\n{notes}Wrote {work_dir}/sweep.json, sweep.md, sweep.png"
        + (f"; {failed} of {len(runs)} runs failed (see the table)" if failed else ""))
    return report


def print_commands(config, grid, log=print, **settings):
    """One shell line per run that has not finished (to submit as separate jobs); afterwards
    ``--collect-only`` builds the table from their work dirs."""
    work_dir, runs = plan_runs(config, grid, **settings)
    for run in runs:
        if not is_finished(run):
            log(shlex.join(command_of(run)))
    return work_dir, runs
