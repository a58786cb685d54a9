"""The robustness report page of the demo's models: ``<work_dir>/report/report.html``.

For the first seed's four models, on the held-out digits the demo ran AutoAttack on: clean, PGD-20
and the demo's AutoAttack (read back from the attack states the demo's own evaluation keeps beside
each checkpoint, ``attack_states``: not run twice), the gradient-masking checklist and the worst
case, each model's config (the one its run dumped) and the demo's analysis figures
(``<work_dir>/analysis``, embedded as they are). Its console lines go to ``report/report.log``.
"""
import os
import time

from nat_tasks.cls.evaluation.attacks import ThreatModel
from nat_tasks.cls.data.subsets import subset_indices
from nat_tasks.cls.evaluation.robustness_report import ModelInput, ReportSettings, build_report, model_report, read_analysis
from nat_tasks.cls.training.train import load_cls_config


def attack_states(checkpoint):
    """Where the attack states of a demo model are kept: beside its checkpoint."""
    return os.path.join(os.path.dirname(checkpoint), "attack_states")


def demo_report(work_dir, runs, s, device):
    """Write the report of one seed's models (``runs``: the demo's {key: dict(checkpoint=...)})
    with the demo's settings ``s``; returns the page's path."""
    from nat_tasks.cls.demos.demo import MODELS, held_out_digits  # the demo imports this module

    start = time.perf_counter()
    out = os.path.join(work_dir, "report")
    x, y = held_out_digits(s.train_digits, s.n_eval)
    aa_index = subset_indices(len(y), min(s.n_autoattack, len(y)))
    test_indices = subset_indices(5000 - s.train_digits, s.n_eval)  # held_out_digits' subset of the test split
    examples = ([test_indices[i] for i in aa_index], x[aa_index], y[aa_index])
    entries = []
    for key, label, config, _ in MODELS:
        checkpoint = runs[key]["checkpoint"]
        dumped = os.path.join(os.path.dirname(checkpoint), config)  # the run's config, as it trained
        entries.append(ModelInput(label, dumped, load_cls_config(dumped), checkpoint, examples,
                                  attack_states(checkpoint)))
    settings = ReportSettings(threat=ThreatModel(eps=s.eps, alpha=s.eval_alpha),
                              attacks=["clean", "pgd20", s.autoattack], strongest=s.autoattack,
                              square_queries=s.report_square_queries, seed=s.seed, device=device, progress=False)
    analysis = read_analysis(os.path.join(work_dir, "analysis")) if s.analysis_examples else None
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "report.log"), "w") as log_file:
        models = [model_report(entry, settings, log=lambda line: print(line, file=log_file)) for entry in entries]
        page = build_report(models, settings, out, analysis=analysis,
                            title=f"Robustness report of the demo's seed-{s.seed} models ({len(examples[1])} "
                            "held-out digits)")
        print(f"Wrote {page} ({time.perf_counter() - start:.0f} s)", file=log_file)
    return page
