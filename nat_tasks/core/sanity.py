"""Gradient-masking sanity checks (Carlini et al. 2019, "On evaluating adversarial robustness";
Athalye et al. 2018), as pure functions of measured accuracies, shared by every task.

Each check returns a ``Check(name, passed, detail)``; a task runs the attacks, feeds the numbers
in and prints the table. A failed check does not prove gradient masking, and a passed one does not
prove robustness: a failure says "do not trust the white-box number until you understand this".

All accuracies are in % on the *same* examples. ``tolerance`` (percentage points) absorbs the
noise of random starts: two runs of one attack can differ by an example or two.
"""
from dataclasses import asdict, dataclass

DEFAULT_TOLERANCE = 0.5   # points
UNBOUNDED_LIMIT = 1.0     # % accuracy an unbounded attack may leave
DEFAULT_GAP = 5.0         # points between a PGD number and AutoAttack worth a flag


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str

    def as_dict(self):
        return asdict(self)


def _fmt(acc):
    return f"{acc:.2f}"


def strongest_is_lowest(strong_name, strong_acc, weaker, tolerance=DEFAULT_TOLERANCE):
    """A stronger attack (AutoAttack) never finds fewer adversarial examples than ``weaker``
    (``{name: accuracy}``, e.g. PGD-k and CW)."""
    above = {name: acc for name, acc in weaker.items() if strong_acc > acc + tolerance}
    detail = (f"{strong_name} {_fmt(strong_acc)} <= " + ", ".join(f"{n} {_fmt(a)}" for n, a in weaker.items())
              if not above else
              f"{strong_name} {_fmt(strong_acc)} is above " + ", ".join(f"{n} {_fmt(a)}" for n, a in above.items()))
    return Check(f"{strong_name} <= every weaker attack", not above, detail)


def falls_with_eps(acc_by_eps, tolerance=DEFAULT_TOLERANCE, name="accuracy falls with eps"):
    """Accuracy must not rise as the budget grows (``{eps: accuracy}``, any order)."""
    points = sorted(acc_by_eps.items())
    rises = [(a, b) for a, b in zip(points, points[1:]) if b[1] > a[1] + tolerance]
    curve = ", ".join(f"eps {e:.4g}: {_fmt(acc)}" for e, acc in points)
    detail = curve if not rises else curve + "; rises at " + ", ".join(f"eps {b[0]:.4g}" for _, b in rises)
    return Check(name, not rises, detail)


def unbounded_breaks_all(acc, limit=UNBOUNDED_LIMIT, name="unbounded attack reaches ~0 %"):
    """With an unbounded budget every input can be made any image: the metric (accuracy, mAP, in
    %) must be ~0."""
    return Check(name, acc <= limit, f"{_fmt(acc)} % (limit {limit:g})")


def more_effort_not_weaker(acc_by_effort, tolerance=DEFAULT_TOLERANCE, name="more steps/restarts not weaker"):
    """More iterations or restarts of one attack never raise accuracy (``{label: acc}`` in
    increasing order of effort)."""
    items = list(acc_by_effort.items())
    rises = [(a, b) for a, b in zip(items, items[1:]) if b[1] > a[1] + tolerance]
    curve = ", ".join(f"{label}: {_fmt(acc)}" for label, acc in items)
    detail = curve if not rises else curve + "; rises at " + ", ".join(b[0] for _, b in rises)
    return Check(name, not rises, detail)


def blackbox_not_stronger(blackbox, whitebox_name, whitebox_acc, tolerance=DEFAULT_TOLERANCE):
    """A black-box or transfer attack (``{name: acc}``) must not beat the best white-box one."""
    stronger = {n: a for n, a in blackbox.items() if a + tolerance < whitebox_acc}
    listed = ", ".join(f"{n} {_fmt(a)}" for n, a in blackbox.items())
    detail = f"{listed} >= {whitebox_name} {_fmt(whitebox_acc)}" if not stronger else (
        "stronger than " + f"{whitebox_name} {_fmt(whitebox_acc)}: "
        + ", ".join(f"{n} {_fmt(a)}" for n, a in stronger.items()))
    return Check("black-box not stronger than white-box", not stronger, detail)


def gap_within(pgd_name, pgd_acc, aa_name, aa_acc, threshold=DEFAULT_GAP):
    """Flag a large gap between PGD and AutoAttack: the signature of a masked gradient."""
    gap = pgd_acc - aa_acc
    return Check(f"{pgd_name} - {aa_name} gap <= {threshold:g} points", gap <= threshold,
                 f"{pgd_name} {_fmt(pgd_acc)} - {aa_name} {_fmt(aa_acc)} = {gap:.2f}")


def checks_markdown(checks):
    """A pass/fail Markdown table of ``checks``."""
    lines = ["| check | result | detail |", "|---|---|---|"]
    lines += [f"| {c.name} | {'pass' if c.passed else '**FAIL**'} | {c.detail} |" for c in checks]
    return "\n".join(lines) + "\n"
