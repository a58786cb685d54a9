"""Result tables: every report is written as JSON (all numbers) and Markdown (the tables),
atomically, so an interrupted run never leaves a torn file."""
import json

from nat_tasks.core.checkpoint import atomic_write_text


def markdown_table(rows, columns):
    """A Markdown table of ``rows`` (dicts) with ``columns`` = [(key, header), ...]; floats are
    shown with two decimals, everything else as ``str``."""
    lines = ["| " + " | ".join(h for _, h in columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for row in rows:
        cells = [f"{row[k]:.2f}" if isinstance(row[k], float) else str(row[k]) for k, _ in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_results(stem, report, markdown):
    """Write ``<stem>.json`` (``report``) and ``<stem>.md`` (``markdown``); returns both paths."""
    json_path, markdown_path = f"{stem}.json", f"{stem}.md"
    atomic_write_text(json.dumps(report, indent=2) + "\n", json_path)
    atomic_write_text(markdown, markdown_path)
    return json_path, markdown_path
