"""The robustness report of classification checkpoints: one page to look at or hand on.

Per model: clean / PGD / AutoAttack (or sparse-AutoAttack under l0) with 95 % intervals, the worst
case over every attack run at the threat model (robust under all of them, per example), the
gradient-masking checklist's verdicts (Linf), transfer rows crafted on a surrogate, how the
checkpoint was selected, its config; for all models the analysis figures (Figs. 3-8) and the code
version. ``report_page`` renders it as HTML (self-contained), Markdown and JSON.

Nothing here computes a number of its own: the attacks are eval_cls's evaluation
(``evaluation.evaluate``, RobustBench rules) through ``attack_cache`` (one resumable state per
attack under ``<out>/states/``: a second run with the same ``out`` reads them back), the checklist
is ``checklist.gradient_masking_checklist`` and the figures are the analysis package's
(``<out>/analysis/``, reused when its models and settings are unchanged).
"""
import dataclasses
import json
import os
import re
import subprocess
import time
from importlib import metadata

from nat_tasks.core.checkpoint import atomic_write_text
from nat_tasks.core.errors import NatError
from nat_tasks.runtime.eval_store import file_sha256
from nat_tasks.runtime.checkout import REPO_ROOT

from nat_tasks.cls.analysis import analyze_models
from nat_tasks.cls.models.architectures import data_info
from nat_tasks.cls.evaluation.attack_cache import evaluate_each
from nat_tasks.cls.evaluation.checklist import gradient_masking_checklist
from nat_tasks.cls.evaluation.eval_setup import model_selection, needs, threat_record
from nat_tasks.cls.evaluation.eval_state import examples_sha256
from nat_tasks.cls.evaluation.evaluation import worst_case
from nat_tasks.cls.training.nasty_section import build_adversary, nasty_spec
from nat_tasks.cls.evaluation.report_page import write_report
from nat_tasks.cls.models.weights import classifier_from_config

TRANSFER = ("transfer-pgd20", "transfer-cw20")  # crafted on the surrogate (the checklist's black-box rows)


@dataclasses.dataclass
class ReportSettings:
    """How every model of one report is evaluated and analysed."""
    threat: object                   # ThreatModel (Linf) or SparseThreat (l0)
    attacks: list                    # attack names, e.g. ['clean', 'pgd20', 'aa']
    checklist: bool = True           # the gradient-masking checklist (Linf only)
    strongest: str = "aa"            # the checklist's reference attack
    square_queries: int = 5000
    gap_threshold: float = 5.0
    surrogate: str = None            # CONFIG:CHECKPOINT of the transfer rows
    batch_size: int = 500
    seed: int = 0
    device: str = "cpu"
    figures: tuple = ()              # analysis figures; () for none
    umap_points: int = 2000
    reference_class: int = 0
    progress: bool = True            # progress bars of the attacks


@dataclasses.dataclass
class ModelInput:
    """One model of the report: its label, config (path and loaded), checkpoint, examples
    (``(indices in the test split, images, labels)``) and the folder of its attack states."""
    label: str
    config: str
    cfg: object
    checkpoint: str
    examples: tuple
    states: str


def states_folder(out, label):
    """Where the report in ``out`` keeps the attack states of the model ``label``."""
    return os.path.join(out, "states", re.sub(r"[^A-Za-z0-9.+-]+", "_", label))


def code_version():
    """The git commit of this checkout (and whether it has uncommitted changes), else the installed
    package version."""
    def git(*args):
        try:
            proc = subprocess.run(["git", "-C", REPO_ROOT, *args], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            return None
        return proc.stdout.strip() if proc.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit:
        changed = bool(git("status", "--porcelain", "--untracked-files=no"))
        return dict(commit=commit, uncommitted_changes=changed,
                    text=commit[:12] + (" with uncommitted changes" if changed else ""))
    try:
        version = metadata.version("nat_tasks")
    except metadata.PackageNotFoundError:
        version = "unknown"
    return dict(commit=None, uncommitted_changes=None, text=f"nat_tasks {version} (not a git checkout)")


def model_report(entry, settings, *, surrogate=None, log=print):
    """The report's section of one model (a dict, see ``report_page``)."""
    indices, x, y = entry.examples
    threat = settings.threat
    model = classifier_from_config(entry.cfg.model, entry.checkpoint)
    attacks = list(settings.attacks) + [a for a in TRANSFER if surrogate is not None and a not in settings.attacks]
    nasty = nasty_spec(entry.cfg.model)
    adversary = None
    if needs(attacks, "adversary"):
        if nasty is None:
            raise NatError(f"{entry.label}: nat-adaptive needs a NAT config (model.nasty)")
        adversary = build_adversary(nasty, data_info(entry.cfg.model))
    common = dict(checkpoint=entry.checkpoint, nasty=nasty, surrogate_spec=settings.surrogate, adversary=adversary,
                  surrogate=surrogate, batch_size=settings.batch_size, seed=settings.seed, device=settings.device,
                  num_classes=entry.cfg.model.get("num_classes"), progress=settings.progress, log=log)
    selection, health = model_selection(entry.checkpoint)
    log(f"== {entry.label}: {entry.checkpoint} on {len(x)} test examples, {threat.describe()}; model selection: "
        f"{selection}")

    def run(names, threat_model):
        return evaluate_each(model, x, y, names, threat_model, entry.states, **common)

    results = run(attacks, threat)
    checklist = None
    at_budget = list(results)
    if settings.checklist and threat.norm == "Linf":
        checked, checks = gradient_masking_checklist(
            model, x, y, threat, surrogate=surrogate, square_queries=settings.square_queries,
            strongest=settings.strongest, gap_threshold=settings.gap_threshold, log=log, run=run)
        checklist = dict(results=checked, checks=[c.as_dict() for c in checks])
        names = {r["attack"] for r in results}
        at_budget += [{k: v for k, v in r.items() if k != "eps"} for r in checked
                      if r["eps"] == threat.eps and r["attack"] not in names]
    worst = dict(worst_case(at_budget), attacks=[r["attack"] for r in at_budget])
    log(f"{'worst case':>14}: {worst['accuracy']:6.2f}% [{worst['low']:.1f}, {worst['high']:.1f}] "
        f"({worst['correct']}/{worst['n']}) robust under all {len(at_budget)} attacks")
    return dict(label=entry.label, config=entry.config, config_text=entry.cfg.pretty_text,
                checkpoint=entry.checkpoint, checkpoint_sha256=file_sha256(entry.checkpoint),
                model_selection=selection, health=health, n_examples=len(x), examples=list(indices),
                results=results, worst_case=worst, transfer=[r["attack"] for r in results if r["attack"] in TRANSFER],
                checklist=checklist, checklist_note=_checklist_note(settings), states=entry.states)


def _checklist_note(settings):
    if not settings.checklist:
        return "not run (--no-checklist)"
    if settings.threat.norm != "Linf":
        return "not run: the checklist checks the Linf threat model"
    return None


def analysis_section(models, x, y, settings, out, *, class_names=None, log=print):
    """The analysis figures of ``models`` ({label: (classifier, checkpoint)}) on ``x``, ``y`` in
    ``out``: drawn by ``analyze_models``, or read back when ``out`` holds those of the same
    checkpoints, examples and settings."""
    attack = (dict(eps=settings.threat.eps, alpha=settings.threat.alpha, steps=20)
              if settings.threat.norm == "Linf" else None)
    identity = dict(checkpoints={label: file_sha256(checkpoint) for label, (_, checkpoint) in models.items()},
                    examples_sha256=examples_sha256(x, y), figures=list(settings.figures), attack=attack,
                    seed=settings.seed, batch_size=settings.batch_size, umap_points=settings.umap_points,
                    reference_class=settings.reference_class)
    identity_path = os.path.join(out, "report_identity.json")
    saved = read_analysis(out)
    if saved is not None and _read_json(identity_path) == identity:
        log(f"analysis figures: read back from {out}")
        return saved
    if os.path.exists(identity_path):  # the figures are about to change: never pair them with the old identity
        os.remove(identity_path)
    report, _ = analyze_models({label: model for label, (model, _) in models.items()}, x, y, out,
                               figures=settings.figures, attack=attack, seed=settings.seed,
                               batch_size=min(settings.batch_size, 256), device=str(settings.device),
                               reference_class=settings.reference_class, umap_points=settings.umap_points,
                               class_names=class_names, log=log,
                               title=f"Analysis of {', '.join(models)} ({len(x)} test examples)")
    atomic_write_text(json.dumps(identity, indent=2) + "\n", identity_path)
    return dict(report, folder=out)


def read_analysis(folder):
    """``analysis.json`` of ``folder`` with its folder, or None when it or a figure is missing."""
    report = _read_json(os.path.join(folder, "analysis.json"))
    if report is None or not all(os.path.isfile(p) for p in report.get("files", {}).values()):
        return None
    return dict(report, folder=folder)


def _read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def build_report(models, settings, out, *, analysis=None, title="Robustness report", command=None):
    """Write the report of ``models`` (``model_report``'s sections) and ``analysis`` (``analysis_section``,
    ``read_analysis`` or None) to ``<out>/report.html``, ``.md`` and ``.json``; returns the HTML path."""
    report = dict(title=title, created=time.strftime("%Y-%m-%d %H:%M:%S %Z"), command=command,
                  code_version=code_version(), threat=threat_record(settings.threat),
                  settings=dict(attacks=list(settings.attacks), checklist=settings.checklist,
                                strongest=settings.strongest, square_queries=settings.square_queries,
                                gap_threshold=settings.gap_threshold, surrogate=settings.surrogate,
                                batch_size=settings.batch_size, seed=settings.seed, device=str(settings.device)),
                  models=models, analysis=analysis)
    return write_report(report, out)
