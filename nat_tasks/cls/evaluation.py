"""Robustness evaluation as a function of (model, data, threat model), RobustBench rules.

The model is put in eval mode and takes [0, 1] images (normalisation inside); every attack is run
with a fixed seed, set afresh before it, so a result does not depend on which attacks ran before;
each result carries a human-readable description of the attack's settings. Adversarial examples
are checked against the budget and the [0, 1] box before they are counted.

Attack names (``parse_attack``):
- ``clean``; ``fgsm``; ``pgd<k>`` (PGD-k on the CE, random start); ``cw`` / ``cw<k>`` (PGD on the
  CW margin loss, the CW-inf of AT papers, 20 steps by default);
- ``aa`` (AutoAttack standard through pyautoattack); ``apgd-ce-<k>`` / ``apgd-dlr-<k>`` (one APGD
  attack with k iterations, 1 restart); ``square`` (Square, 5000 queries);
- ``nat-adaptive`` / ``nat-adaptive<k>`` (PGD-k, default 10 as the paper's K, on eq. 14's loss
  ``CE - w tau^2 KL(p_t || p_a)``; needs the NAT adversary).
"""
import re
import time
from dataclasses import dataclass

import torch
from tqdm import tqdm

from nat_tasks.core.attacks import NatAdaptiveLoss, fgsm, pgd
from nat_tasks.core.autoattack import autoattack, autoattack_settings
from nat_tasks.core.errors import NatError, check_eps

ATTACK_HELP = "clean, fgsm, pgd<k>, cw, cw<k>, aa, apgd-ce-<k>, apgd-dlr-<k>, square, nat-adaptive, nat-adaptive<k>"


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


def parse_attack(name):
    name = name.strip().lower()
    if name in ("clean", "fgsm"):
        return AttackSpec(name, name)
    if name == "aa":
        return AttackSpec(name, "autoattack")
    if name == "square":
        return AttackSpec(name, "autoattack", aa_attacks=("square",))
    patterns = [(r"pgd(\d+)", "pgd", None), (r"cw(\d*)", "cw", 20), (r"nat-adaptive(\d*)", "nat-adaptive", 10),
                (r"apgd-(ce|dlr)-(\d+)", "autoattack", None)]
    for pattern, kind, default_steps in patterns:
        match = re.fullmatch(pattern, name)
        if not match:
            continue
        if kind == "autoattack":
            return AttackSpec(name, kind, steps=int(match.group(2)), aa_attacks=(f"apgd-{match.group(1)}",))
        steps = int(match.group(1)) if match.group(1) else default_steps
        if steps < 1:
            break
        return AttackSpec(name, kind, steps=steps)
    raise NatError(f"unknown attack {name!r}; expected one of: {ATTACK_HELP}")


def describe_attack(spec, threat, nat_settings=None):
    """The settings printed and saved next to each result."""
    if spec.kind == "clean":
        return "no attack"
    budget = threat.describe()
    if spec.kind == "fgsm":
        return f"FGSM, {budget}"
    if spec.kind in ("pgd", "cw"):
        loss = "CE" if spec.kind == "pgd" else "CW margin"
        return f"PGD-{spec.steps} ({loss}), {budget}, alpha={threat.alpha:.4g}, random start, 1 restart"
    if spec.kind == "nat-adaptive":
        s = nat_settings or {}
        return (f"PGD-{spec.steps} on CE - w tau^2 KL(p_t||p_a) (eq. 14; w={s.get('w')}, tau={s.get('tau')}, "
                f"tau^2 {'on' if s.get('scale_by_tau2', True) else 'off'}), {budget}, alpha={threat.alpha:.4g}, random start")
    if spec.aa_attacks:
        return f"{autoattack_settings('custom', list(spec.aa_attacks), spec.steps or None)}, {budget}"
    return f"{autoattack_settings('standard')}, {budget}"


def _attack_batch(spec, model, x, y, threat, *, seed, device, num_classes, nat_loss):
    """Robust-correct flags (bool, per sample) of one batch under one attack."""
    if spec.kind == "clean":
        x_adv = x
    elif spec.kind == "fgsm":
        x_adv = fgsm(model, x, y, eps=threat.eps)
    elif spec.kind in ("pgd", "cw", "nat-adaptive"):
        loss = {"pgd": "ce", "cw": "cw", "nat-adaptive": nat_loss}[spec.kind]
        x_adv = pgd(model, x, y, eps=threat.eps, alpha=threat.alpha, steps=spec.steps, norm=threat.norm, loss=loss)
    else:
        version = "custom" if spec.aa_attacks else "standard"
        x_adv, _ = autoattack(model, x, y, eps=threat.eps, norm=threat.norm, version=version,
                              attacks=list(spec.aa_attacks) or None, apgd_steps=spec.steps or None,
                              num_classes=num_classes, batch_size=len(x), seed=seed, device=device)
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
             adversary=None, nat_settings=None, progress=True, log=print):
    """Accuracy of ``model`` on ``(x, y)`` (first dim = examples) under each attack name in ``attacks``.

    ``adversary`` (a ``FrozenAdversary``) and ``nat_settings`` (``dict(w, tau, scale_by_tau2)``)
    are needed for ``nat-adaptive`` only. Returns one dict per attack: ``attack``, ``accuracy`` (%),
    ``correct``, ``n``, ``settings``, ``seconds``; each is also passed to ``log`` as it finishes.
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
    results = []
    for spec in specs:
        settings = describe_attack(spec, threat, nat_settings)
        torch.manual_seed(seed)
        start, correct = time.perf_counter(), 0
        batches = range(0, len(x), batch_size)
        for i in tqdm(batches, desc=spec.name, disable=not progress, leave=False):
            xb, yb = x[i:i + batch_size].to(device), y[i:i + batch_size].to(device)
            correct += int(_attack_batch(spec, model, xb, yb, threat, seed=seed, device=device,
                                         num_classes=num_classes, nat_loss=nat_loss).sum())
        result = dict(attack=spec.name, accuracy=100.0 * correct / max(len(x), 1), correct=correct, n=len(x),
                      settings=settings, seconds=round(time.perf_counter() - start, 2))
        log(f"{spec.name:>14}: {result['accuracy']:6.2f}% ({correct}/{len(x)})  [{settings}]")
        results.append(result)
    return results


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
