"""Robustness evaluation as a function of (model, data, threat model), RobustBench rules.

The model is put in eval mode and takes [0, 1] images (normalisation inside); every attack
(``attacks.py``, by name) is run with a fixed seed, set afresh before it, so a result does not
depend on which attacks ran before; each result carries the attack's description. Adversarial
examples are checked against the budget and the [0, 1] box before they are counted, and an
example counts as robust only if it is also classified correctly clean (RobustBench and
AutoAttack count a clean mistake as broken), so no robust accuracy can exceed the clean one. Every
result carries its per-example flags and a 95 % bootstrap interval over the examples.
"""
import time

import torch
from tqdm import tqdm

from nat_tasks.core.sparse import check_l0
from nat_tasks.core.stats import bootstrap_interval

from .attacks import REGISTRY, check_threat


def _check_budget(x_adv, x, threat, tol=1e-5):
    """Never count an example outside the threat model (a bug, not a robustness result). Under the
    l0 threat model (``SparseThreat``): at most ``k`` pixel locations changed (any channel), [0, 1]."""
    if threat.norm == "L0":
        check_l0(x_adv, x, threat.k, box_tol=tol)  # raises SparseBudgetError, a RuntimeError
        return
    delta = (x_adv - x).flatten(1)
    size = delta.abs().max(dim=1).values if threat.norm == "Linf" else delta.norm(dim=1)
    if bool((size > threat.eps + tol).any()) or bool((x_adv < -tol).any()) or bool((x_adv > 1 + tol).any()):
        raise RuntimeError("an attack left the threat model: refusing to report its accuracy")


def build_attacks(names, threat, *, seed=0, device=None, num_classes=None, adversary=None, nasty=None,
                  surrogate=None, progress=False):
    """The named attacks for one run, every one built before any runs, so a bad name, a bad setting,
    an attack of the other threat model (l0 vs Linf) or a missing input (``adversary``/``nasty``
    for nat-adaptive, ``surrogate`` for transfer-*) fails first. The adversary and the surrogate
    move to ``device``. ``progress``: per-iteration bars of the long (sparse) attacks."""
    for name in names:
        check_threat(name, threat)
    run = dict(threat=threat, seed=seed, device=device, num_classes=num_classes, nasty=nasty, progress=progress,
               adversary=adversary.to(device) if adversary is not None else None,
               surrogate=surrogate.to(device).eval() if surrogate is not None else None)
    return [REGISTRY.build(name, **{k: v for k, v in run.items() if v is not None}) for name in names]


def evaluate(model, x, y, attacks, threat, *, batch_size=500, seed=0, device=None, num_classes=None,
             adversary=None, nasty=None, surrogate=None, progress=True, log=print):
    """Accuracy of ``model`` on ``(x, y)`` (first dim = examples) under each attack name in ``attacks``.

    ``threat``: a ``ThreatModel`` (Linf) or a ``SparseThreat(k)`` (l0: the sparse attacks, every
    batch checked for at most k changed pixel locations); an attack of the other one is an error.

    ``adversary`` (a ``FrozenAdversary``) and ``nasty`` (the config's ``NastySpec``) are needed
    for ``nat-adaptive`` only, ``surrogate`` (a [0, 1]-input model) for ``transfer-*``; all
    attacks are built first (``build_attacks``).
    Returns one dict per attack: ``attack``, ``accuracy`` (%), ``low``/``high`` (95 % bootstrap
    interval over the examples, %), ``correct``, ``n``, ``settings``, ``seconds`` and ``flags``
    (per example: robust, i.e. correct clean and after the attack); each is also passed to ``log``.
    """
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model = model.to(device).eval()
    results = []
    for attack in build_attacks(attacks, threat, seed=seed, device=device, num_classes=num_classes,
                                adversary=adversary, nasty=nasty, surrogate=surrogate, progress=progress):
        torch.manual_seed(seed)
        start, flags = time.perf_counter(), []
        for i in tqdm(range(0, len(x), batch_size), desc=attack.name, disable=not progress, leave=False):
            xb, yb = x[i:i + batch_size].to(device), y[i:i + batch_size].to(device)
            x_adv = attack(model, xb, yb)
            _check_budget(x_adv, xb, threat)
            with torch.no_grad():
                clean = model(xb).argmax(dim=1) == yb
                attacked = model(x_adv).argmax(dim=1) == yb
            flags += (clean & attacked).tolist()
        results.append(_result(attack.name, flags, attack.describe(), time.perf_counter() - start))
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
