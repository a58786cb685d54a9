"""Robustness evaluation as a function of (model, data, threat model), RobustBench rules.

The model is put in eval mode and takes [0, 1] images (normalisation inside); every attack is run
with a fixed seed, set afresh before it, so a result does not depend on which attacks ran before;
each result carries a human-readable description of the attack's settings. Adversarial examples
are checked against the budget and the [0, 1] box before they are counted, and an example counts
as robust only if it is also classified correctly clean (RobustBench and AutoAttack count a clean
mistake as broken), so no robust accuracy can exceed the clean one. Every result carries its
per-example flags and a 95 % bootstrap interval over the examples.

Attack names (``parse_attack``):
- ``clean``; ``fgsm``; ``pgd<k>`` (PGD-k on the CE, random start) and ``pgd<k>x<r>`` (r restarts,
  per example the best); ``cw`` / ``cw<k>`` (PGD on the CW margin loss, the CW-inf of AT papers,
  20 steps by default);
- ``aa`` (AutoAttack standard through pyautoattack); ``apgd-ce-<k>`` / ``apgd-dlr-<k>`` (one APGD
  attack with k iterations, 1 restart); ``square`` / ``square<q>`` (Square, 5000 or q queries);
- ``nat-adaptive`` / ``nat-adaptive<k>`` (PGD-k, default 10 as the paper's K, on eq. 14's loss
  ``CE - w tau^2 KL(p_t || p_a)`` with the gradient through both models; needs the NAT adversary);
- ``transfer-<attack>`` for ``<attack>`` in fgsm, pgd<k>[x<r>], cw[<k>]: crafted on a surrogate
  model (black-box transfer), counted on the evaluated one.

``gradient_masking_checklist`` runs the sanity checks of Carlini et al. 2019 / Athalye et al. 2018
on top of ``evaluate``.
"""
import re
import time
from dataclasses import dataclass, replace

import torch
from tqdm import tqdm

from nat_tasks.core.attacks import NatAdaptiveLoss, fgsm, pgd
from nat_tasks.core.autoattack import autoattack, autoattack_settings
from nat_tasks.core.errors import NatError, check_eps
from nat_tasks.core.stats import bootstrap_interval

ATTACK_HELP = ("clean, fgsm, pgd<k>, pgd<k>x<restarts>, cw, cw<k>, aa, apgd-ce-<k>, apgd-dlr-<k>, square[<queries>], "
               "nat-adaptive, nat-adaptive<k>, transfer-<fgsm|pgd..|cw..>")
TRANSFERABLE = ("fgsm", "pgd", "cw")


@dataclass(frozen=True)
class ThreatModel:
    """Budget and step size in pixel units of [0, 1] images."""
    eps: float
    alpha: float
    norm: str = "Linf"

    def __post_init__(self):
        check_eps(self.eps)
        if not 0.0 < self.alpha <= 1.0:
            raise NatError(f"alpha={self.alpha} is outside (0, 1] (pixel units)")

    def describe(self):
        return f"{self.norm} eps={self.eps:.4g} ({self.eps * 255:.3g}/255)"


@dataclass(frozen=True)
class AttackSpec:
    name: str
    kind: str  # clean | fgsm | pgd | cw | autoattack | nat-adaptive
    steps: int = 0
    aa_attacks: tuple = ()
    restarts: int = 1
    transfer: bool = False  # crafted on a surrogate model
    queries: int = 0  # Square's query budget (0: AutoAttack's 5000)


def parse_attack(name):
    name = name.strip().lower()
    if name.startswith("transfer-"):
        base = parse_attack(name[len("transfer-"):])
        if base.kind not in TRANSFERABLE:
            raise NatError(f"unknown attack {name!r}: only {', '.join(TRANSFERABLE)} attacks transfer")
        return replace(base, name=name, transfer=True)
    if name in ("clean", "fgsm"):
        return AttackSpec(name, name)
    if name == "aa":
        return AttackSpec(name, "autoattack")
    match = re.fullmatch(r"square(\d*)", name)
    if match and (not match.group(1) or int(match.group(1)) >= 1):
        return AttackSpec(name, "autoattack", aa_attacks=("square",), queries=int(match.group(1) or 0))
    match = re.fullmatch(r"apgd-(ce|dlr)-(\d+)", name)
    if match and int(match.group(2)) >= 1:
        return AttackSpec(name, "autoattack", steps=int(match.group(2)), aa_attacks=(f"apgd-{match.group(1)}",))
    patterns = [(r"pgd(\d+)(?:x(\d+))?", "pgd", None), (r"cw(\d*)", "cw", 20),
                (r"nat-adaptive(\d*)", "nat-adaptive", 10)]
    for pattern, kind, default_steps in patterns:
        match = re.fullmatch(pattern, name)
        if not match:
            continue
        steps = int(match.group(1)) if match.group(1) else default_steps
        restarts = int(match.group(2)) if kind == "pgd" and match.group(2) else 1
        if steps < 1 or restarts < 1:
            break
        return AttackSpec(name, kind, steps=steps, restarts=restarts)
    raise NatError(f"unknown attack {name!r}; expected one of: {ATTACK_HELP}")


def describe_attack(spec, threat, nat_settings=None):
    """The settings printed and saved next to each result."""
    if spec.kind == "clean":
        return "no attack"
    budget = threat.describe()
    source = ", crafted on the surrogate (transfer)" if spec.transfer else ""
    if spec.kind == "fgsm":
        return f"FGSM, {budget}{source}"
    if spec.kind in ("pgd", "cw"):
        loss = "CE" if spec.kind == "pgd" else "CW margin"
        restarts = f"{spec.restarts} restart{'s' if spec.restarts > 1 else ''}"
        return f"PGD-{spec.steps} ({loss}), {budget}, alpha={threat.alpha:.4g}, random start, {restarts}{source}"
    if spec.kind == "nat-adaptive":
        s = nat_settings or {}
        return (f"PGD-{spec.steps} on CE - w tau^2 KL(p_t||p_a) (eq. 14; w={s.get('w')}, tau={s.get('tau')}, "
                f"tau^2 {'on' if s.get('scale_by_tau2', True) else 'off'}; gradient through target and "
                f"adversary), {budget}, alpha={threat.alpha:.4g}, random start")
    if spec.aa_attacks:
        return (f"{autoattack_settings('custom', list(spec.aa_attacks), spec.steps or None, spec.queries or None)}, "
                f"{budget}")
    return f"{autoattack_settings('standard')}, {budget}"


def _attack_batch(spec, model, x, y, threat, *, seed, device, num_classes, nat_loss, surrogate):
    """Flags (bool, per sample): the attacked example is classified correctly (clean not combined)."""
    crafter = surrogate if spec.transfer else model
    if spec.kind == "clean":
        x_adv = x
    elif spec.kind == "fgsm":
        x_adv = fgsm(crafter, x, y, eps=threat.eps)
    elif spec.kind in ("pgd", "cw", "nat-adaptive"):
        loss = {"pgd": "ce", "cw": "cw", "nat-adaptive": nat_loss}[spec.kind]
        x_adv = pgd(crafter, x, y, eps=threat.eps, alpha=threat.alpha, steps=spec.steps, norm=threat.norm,
                    loss=loss, restarts=spec.restarts)
    else:
        version = "custom" if spec.aa_attacks else "standard"
        x_adv, _ = autoattack(model, x, y, eps=threat.eps, norm=threat.norm, version=version,
                              attacks=list(spec.aa_attacks) or None, apgd_steps=spec.steps or None,
                              square_queries=spec.queries or None, num_classes=num_classes,
                              batch_size=len(x), seed=seed, device=device)
    _check_budget(x_adv, x, threat)
    with torch.no_grad():
        return model(x_adv).argmax(dim=1) == y


def _check_budget(x_adv, x, threat, tol=1e-5):
    """Never count an example outside the threat model (a bug, not a robustness result)."""
    delta = (x_adv - x).flatten(1)
    size = delta.abs().max(dim=1).values if threat.norm == "Linf" else delta.norm(dim=1)
    if bool((size > threat.eps + tol).any()) or bool((x_adv < -tol).any()) or bool((x_adv > 1 + tol).any()):
        raise RuntimeError("an attack left the threat model: refusing to report its accuracy")


def evaluate(model, x, y, attacks, threat, *, batch_size=500, seed=0, device=None, num_classes=None,
             adversary=None, nat_settings=None, surrogate=None, progress=True, log=print):
    """Accuracy of ``model`` on ``(x, y)`` (first dim = examples) under each attack name in ``attacks``.

    ``adversary`` (a ``FrozenAdversary``) and ``nat_settings`` (``dict(w, tau, scale_by_tau2)``)
    are needed for ``nat-adaptive`` only, ``surrogate`` (a [0, 1]-input model) for ``transfer-*``.
    Returns one dict per attack: ``attack``, ``accuracy`` (%), ``low``/``high`` (95 % bootstrap
    interval over the examples, %), ``correct``, ``n``, ``settings``, ``seconds`` and ``flags``
    (per example: robust, i.e. correct clean and after the attack); each is also passed to ``log``.
    """
    specs = [parse_attack(a) for a in attacks]
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model = model.to(device).eval()
    nat_loss = None
    if any(s.kind == "nat-adaptive" for s in specs):
        if adversary is None or not nat_settings:
            raise NatError("nat-adaptive needs the NAT adversary: evaluate with a NAT config (model.adversary)")
        nat_loss = NatAdaptiveLoss(adversary.to(device), nat_settings["w"], nat_settings["tau"],
                                   nat_settings.get("scale_by_tau2", True))
    if any(s.transfer for s in specs):
        if surrogate is None:
            raise NatError("transfer attacks need a surrogate model (eval_cls.py --surrogate CONFIG:CHECKPOINT)")
        surrogate = surrogate.to(device).eval()
    results = []
    for spec in specs:
        settings = describe_attack(spec, threat, nat_settings)
        torch.manual_seed(seed)
        start, flags = time.perf_counter(), []
        batches = range(0, len(x), batch_size)
        for i in tqdm(batches, desc=spec.name, disable=not progress, leave=False):
            xb, yb = x[i:i + batch_size].to(device), y[i:i + batch_size].to(device)
            with torch.no_grad():
                clean = model(xb).argmax(dim=1) == yb
            attacked = clean if spec.kind == "clean" else _attack_batch(
                spec, model, xb, yb, threat, seed=seed, device=device, num_classes=num_classes,
                nat_loss=nat_loss, surrogate=surrogate)
            flags += (clean & attacked).tolist()
        results.append(_result(spec.name, flags, settings, time.perf_counter() - start))
        log(_log_line(results[-1]))
    return results


def _result(attack, flags, settings, seconds):
    n, correct = len(flags), sum(flags)
    low, high = bootstrap_interval(flags) if n else (0.0, 0.0)
    return dict(attack=attack, accuracy=100.0 * correct / max(n, 1), low=100.0 * low, high=100.0 * high,
                correct=correct, n=n, settings=settings, seconds=round(seconds, 2), flags=flags)


def _log_line(result):
    return (f"{result['attack']:>14}: {result['accuracy']:6.2f}% [{result['low']:.1f}, {result['high']:.1f}] "
            f"({result['correct']}/{result['n']})  [{result['settings']}]")


def subset_indices(size, n, seed=0):
    """A fixed random subset of ``n`` of ``size`` examples (all of them, in order, when n >= size).

    Not the first n: EmbeddedMNIST and ImageFolder trees are sorted by class, so their first
    examples are one class. The permutation depends only on ``seed`` (not on the attack seed).
    """
    if n is None or n >= size:
        return list(range(size))
    return torch.randperm(size, generator=torch.Generator().manual_seed(seed))[:n].sort().values.tolist()


def markdown_table(rows, columns):
    """A Markdown table of ``rows`` (dicts) with ``columns`` = [(key, header), ...]."""
    lines = ["| " + " | ".join(h for _, h in columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for row in rows:
        cells = [f"{row[k]:.2f}" if isinstance(row[k], float) else str(row[k]) for k, _ in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
