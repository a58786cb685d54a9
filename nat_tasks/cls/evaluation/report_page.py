"""The robustness report (``robustness_report``) as files: ``report.json`` (every number, the
per-example flags included), ``report.md`` (the tables; figures linked) and ``report.html``, one
self-contained page: styles inline, figures embedded as ``data:`` URIs, no script and no link to
anything outside, so it opens from disk or as a mail attachment. Rendered by jinja2 with
autoescaping: every text from a config, a path or a label is escaped.
"""
import base64
import json
import math
import os

import jinja2

from nat_tasks.core.checkpoint import atomic_write_text
from nat_tasks.runtime import markdown_table

from nat_tasks.cls.analysis.report import SCALARS
from nat_tasks.cls.evaluation.evaluation import results_table


def interval(result):
    """``'57.20 [54.1, 60.3]'``: an accuracy (%) and its 95 % interval."""
    return f"{result['accuracy']:.2f} [{result['low']:.1f}, {result['high']:.1f}]"


def checklist_summary(model):
    if model["checklist"] is None:
        return model["checklist_note"]
    checks = model["checklist"]["checks"]
    failed = [c["name"] for c in checks if not c["passed"]]
    return f"{len(checks) - len(failed)}/{len(checks)} passed" + (f"; FAILED: {'; '.join(failed)}" if failed else "")


def summary_rows(report):
    """One row per model: the asked attacks' accuracies, the worst case and the checklist."""
    attacks = report["settings"]["attacks"]
    rows = []
    for model in report["models"]:
        by_name = {r["attack"]: r for r in model["results"]}
        rows.append(dict(model=model["label"], selection=model["model_selection"],
                         **{a: interval(by_name[a]) for a in attacks}, worst=interval(model["worst_case"]),
                         checklist=checklist_summary(model)))
    columns = [("model", "model"), *[(a, f"{a} (%)") for a in attacks], ("worst", "worst case (%)"),
               ("checklist", "checklist"), ("selection", "model selection")]
    return rows, columns


def scalar_rows(analysis):
    """The analysis summary (one scalar per figure and model) as rows and columns."""
    columns = [("model", "model"), ("accuracy", f"clean accuracy (n={analysis['n_examples']})")]
    columns += [column for figure in analysis["figures"] for column in SCALARS[figure]]
    rows = [dict(model=label, accuracy=_number(entry.get("clean_accuracy"), 1),
                 **{key: _number(entry.get(key)) for figure in analysis["figures"] for key, _ in SCALARS[figure]})
            for label, entry in analysis["models"].items()]
    return rows, columns


def _number(value, digits=3):
    return "n/a" if value is None or (isinstance(value, float) and not math.isfinite(value)) else f"{value:.{digits}f}"


def _data_uri(path):
    with open(path, "rb") as f:
        return "data:image/png;base64," + base64.b64encode(f.read()).decode("ascii")


def _figures(analysis):
    return [dict(name=name, path=analysis["files"][name], caption=analysis["captions"][name])
            for name in analysis["figures"] if name in analysis["files"]]


def render_markdown(report, out):
    rows, columns = summary_rows(report)
    lines = [f"# {report['title']}", "", _context(report), "", markdown_table(rows, columns)]
    for model in report["models"]:
        lines += [f"## {model['label']}", "",
                  f"- config: `{model['config']}`", f"- checkpoint: `{model['checkpoint']}` "
                  f"(SHA-256 {model['checkpoint_sha256'][:16]})", f"- model selection: {model['model_selection']}",
                  *([f"- warning: the trainer saved this checkpoint {model['health']}"] if model["health"] else []),
                  f"- {model['n_examples']} test examples (indices in report.json)", "",
                  results_table(model["results"]),
                  f"Worst case: {interval(model['worst_case'])} % robust under every one of "
                  f"{', '.join(model['worst_case']['attacks'])}.", "",
                  f"Gradient-masking checklist: {checklist_summary(model)}", ""]
        if model["checklist"] is not None:
            lines.append(markdown_table([dict(c, verdict="pass" if c["passed"] else "**FAIL**")
                                         for c in model["checklist"]["checks"]],
                                        [("name", "check"), ("verdict", "result"), ("detail", "detail")]))
    analysis = report["analysis"]
    if analysis is not None:
        rows, columns = scalar_rows(analysis)
        lines += ["## Analysis figures", "", markdown_table(rows, columns)]
        for figure in _figures(analysis):
            lines += [f"![{figure['name']}]({os.path.relpath(figure['path'], out)})", "", figure["caption"], ""]
    lines += [_footer(report), ""]
    return "\n".join(lines)


def _context(report):
    threat = report["threat"]
    budget = (f"k={threat['k']} pixels" if threat["norm"] == "L0"
              else f"eps={threat['eps']:.4g}, step {threat['alpha']:.4g}")
    return (f"Threat model: {threat['norm']} {budget}; seed {report['settings']['seed']}, batch size "
            f"{report['settings']['batch_size']}, {report['settings']['device']}. Accuracies in % with a 95 % "
            "bootstrap interval over the examples; an example counts as robust only if it is also correct clean. "
            "The worst case counts an example robust only if it survives every attack run at this budget.")


def _footer(report):
    command = f" Command: `{report['command']}`." if report.get("command") else ""
    return f"Code version: {report['code_version']['text']}. Created {report['created']}.{command}"


TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ report.title }}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.pass { color: #176b1f; font-weight: bold; }
.fail { color: #b00020; font-weight: bold; }
.warning { color: #b00020; }
figure { margin: 1.5em 0; }
figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption, .note { font-size: 0.85em; color: #555; }
pre { background: #f7f7f7; padding: 0.8em; overflow-x: auto; font-size: 0.8em; }
code { font-size: 0.9em; }
</style>
</head>
<body>
<h1>{{ report.title }}</h1>
<p class="note">{{ context }}</p>
<table>
<tr>{% for key, header in summary_columns %}<th>{{ header }}</th>{% endfor %}</tr>
{% for row in summary_rows %}<tr>{% for key, header in summary_columns %}<td>{{ row[key] }}</td>{% endfor %}</tr>
{% endfor %}</table>
{% for model in report.models %}
<h2 id="model-{{ loop.index }}">{{ model.label }}</h2>
<ul>
<li>config: <code>{{ model.config }}</code></li>
<li>checkpoint: <code>{{ model.checkpoint }}</code> (SHA-256 <code>{{ model.checkpoint_sha256[:16] }}</code>)</li>
<li>model selection: {{ model.model_selection }}</li>
{% if model.health %}<li class="warning">warning: the trainer saved this checkpoint {{ model.health }}</li>{% endif %}
<li>{{ model.n_examples }} test examples (their indices and per-example flags: report.json)</li>
</ul>
<table>
<tr><th>attack</th><th>accuracy (%)</th><th>95 % CI</th><th>robust / n</th><th>settings</th></tr>
{% for r in model.results %}<tr><td>{{ r.attack }}</td><td class="num">{{ "%.2f"|format(r.accuracy) }}</td>
<td class="num">[{{ "%.1f"|format(r.low) }}, {{ "%.1f"|format(r.high) }}]</td>
<td class="num">{{ r.correct }}/{{ r.n }}</td><td>{{ r.settings }}</td></tr>
{% endfor %}<tr><th>worst case</th><th class="num">{{ "%.2f"|format(model.worst_case.accuracy) }}</th>
<th class="num">[{{ "%.1f"|format(model.worst_case.low) }}, {{ "%.1f"|format(model.worst_case.high) }}]</th>
<th class="num">{{ model.worst_case.correct }}/{{ model.worst_case.n }}</th>
<th>robust under every one of: {{ model.worst_case.attacks|join(", ") }}</th></tr>
</table>
{% if model.transfer %}<p>Black-box transfer rows ({{ model.transfer|join(", ") }}): crafted on the surrogate
<code>{{ report.settings.surrogate }}</code>, counted on this model.</p>{% endif %}
<h3>Gradient-masking checklist</h3>
{% if model.checklist %}<table>
<tr><th>check</th><th>result</th><th>detail</th></tr>
{% for c in model.checklist.checks %}<tr><td>{{ c.name }}</td>
<td class="{{ 'pass' if c.passed else 'fail' }}">{{ "pass" if c.passed else "FAIL" }}</td><td>{{ c.detail }}</td></tr>
{% endfor %}</table>
<details><summary>the checklist's attacks</summary>
<table><tr><th>attack</th><th>eps</th><th>accuracy (%)</th><th>95 % CI</th><th>settings</th></tr>
{% for r in model.checklist.results %}<tr><td>{{ r.attack }}</td><td class="num">{{ "%.4g"|format(r.eps) }}</td>
<td class="num">{{ "%.2f"|format(r.accuracy) }}</td>
<td class="num">[{{ "%.1f"|format(r.low) }}, {{ "%.1f"|format(r.high) }}]</td><td>{{ r.settings }}</td></tr>
{% endfor %}</table></details>
{% else %}<p class="note">{{ model.checklist_note }}</p>{% endif %}
<details><summary>config</summary><pre>{{ model.config_text }}</pre></details>
{% endfor %}
{% if analysis %}<h2 id="analysis">Analysis figures</h2>
<table>
<tr>{% for key, header in scalar_columns %}<th>{{ header }}</th>{% endfor %}</tr>
{% for row in scalar_rows %}<tr>{% for key, header in scalar_columns %}<td>{{ row[key] }}</td>{% endfor %}</tr>
{% endfor %}</table>
{% for figure in figures %}<figure id="figure-{{ figure.name }}">
<figcaption>{{ figure.name }} (its definition is drawn under it)</figcaption>
<img src="{{ figure.uri }}" alt="{{ figure.caption }}">
</figure>
{% endfor %}{% endif %}
<hr>
<p class="note">{{ footer }}</p>
</body>
</html>
"""


def render_html(report):
    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    rows, columns = summary_rows(report)
    analysis = report["analysis"]
    scalars = scalar_rows(analysis) if analysis is not None else ([], [])
    figures = [dict(figure, uri=_data_uri(figure["path"])) for figure in _figures(analysis)] if analysis else []
    return environment.from_string(TEMPLATE).render(
        report=report, context=_context(report), footer=_footer(report), summary_rows=rows, summary_columns=columns,
        analysis=analysis, scalar_rows=scalars[0], scalar_columns=scalars[1], figures=figures)


def write_report(report, out):
    """Write ``report.json``, ``report.md`` and ``report.html`` to ``out``; returns the HTML's path."""
    os.makedirs(out, exist_ok=True)
    html = os.path.join(out, "report.html")
    atomic_write_text(json.dumps(report, indent=1) + "\n", os.path.join(out, "report.json"))
    atomic_write_text(render_markdown(report, out), os.path.join(out, "report.md"))
    atomic_write_text(render_html(report), html)
    return html
