"""The worst-case column and the above-clean flag of tools/test.py's table.

An attack can leave a detection mAP *above* the clean one (random starts, an attack that does
not reach the detector's scores, a resampled ranking): such a column is not a robustness result
and the table flags it (``ABOVE_CLEAN``) with a note under it.
"""
from ..core.stats import format_interval
from .worst_case import WORST

ABOVE_CLEAN = " (!)"
ABOVE_CLEAN_NOTE = ("(!) above clean: an attack must not raise mAP; read this column as "
                    "\"no effect measured\", not as robustness.")
WORST_COLUMN = "worst case"


def worst_case_row(metrics):
    """The worst case per image of a test-loop run (``worst/...`` keys), or None when it had none."""
    keys = [k for k in metrics if k.startswith(f"{WORST}/") and k.endswith("/mAP")]
    if not keys:
        return None
    row = {"mAP": float(metrics[keys[0]]) * 100, "n_images": int(metrics[f"{WORST}/n_images"]),
           "from": {k.split("/", 2)[2]: int(v) for k, v in metrics.items() if k.startswith(f"{WORST}/from/")}}
    if f"{WORST}/mAP_low" in metrics:
        row["mAP_ci95"] = [float(metrics[f"{WORST}/mAP_low"]), float(metrics[f"{WORST}/mAP_high"])]
    return row


def cell(row, clean_map=None):
    """``mAP [low, high]``, flagged when above ``clean_map``."""
    text = format_interval(row["mAP"], *row.get("mAP_ci95", (None, None)))
    return text + ABOVE_CLEAN if clean_map is not None and row["mAP"] > clean_map else text
