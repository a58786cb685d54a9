"""Robustness evaluation as a function of (model, data, threat model), RobustBench rules.

The model is put in eval mode and takes [0, 1] images (normalisation inside); every attack
(``attacks.py``, by name) runs batch by batch, each batch seeded from the run's seed and its
index only, so a result depends neither on which attacks or batches ran before nor on the process
that ran it (a resumed or a sharded run gives the numbers of a straight one; ``eval_state.py``);
each result carries the attack's description. Adversarial examples are checked against the budget
and the [0, 1] box before they are counted, and an example counts as robust only if it is also
classified correctly clean (RobustBench and AutoAttack count a clean mistake as broken), so no
robust accuracy can exceed the clean one. Every result carries its per-example flags and a 95 %
bootstrap interval over the examples.
"""
import time
from dataclasses import asdict

import torch
from mmengine.dist import all_gather_object, get_dist_info
from tqdm import tqdm

from nat_tasks.core.attack_registry import Attack
from nat_tasks.core.errors import NatError
from nat_tasks.core.sparse import check_l0
from nat_tasks.core.stats import bootstrap_interval
from nat_tasks.runtime.results import markdown_table
from nat_tasks.runtime.seeding import batch_seed

from nat_tasks.cls.evaluation.attacks import REGISTRY, check_threat
from nat_tasks.cls.evaluation.eval_state import EvalState

TRANSFER_FROM = ("pgd20", "cw")  # crafted on each --transfer-from surrogate: Table 5's black-box columns


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


def build_attacks(attacks, threat, *, seed=0, device=None, num_classes=None, adversary=None, nasty=None,
                  surrogate=None, progress=False):
    """The attacks for one run, every one built before any runs, so a bad name, a bad setting,
    an attack of the other threat model (l0 vs Linf) or a missing input (``adversary``/``nasty``
    for nat-adaptive, ``surrogate`` for transfer-*) fails first. ``attacks``: names, or attacks
    built already (e.g. ``transfer_attacks``), kept as they are. The adversary and the surrogate
    move to ``device``. ``progress``: per-iteration bars of the long (sparse) attacks."""
    names = [a for a in attacks if not isinstance(a, Attack)]
    for name in names:
        check_threat(name, threat)
    run = dict(threat=threat, seed=seed, device=device, num_classes=num_classes, nasty=nasty, progress=progress,
               adversary=adversary.to(device) if adversary is not None else None,
               surrogate=surrogate.to(device).eval() if surrogate is not None else None)
    context = {k: v for k, v in run.items() if v is not None}
    return [a if isinstance(a, Attack) else REGISTRY.build(a, **context) for a in attacks]


def transfer_attacks(surrogates, threat, *, device=None):
    """Table 5's black-box columns: for each ``(label, model)`` in ``surrogates``, the attacks of
    ``TRANSFER_FROM`` crafted on that model (``transfer-<attack>``), named ``'<name> from <label>'``."""
    built = []
    for label, surrogate in surrogates:
        surrogate = surrogate.to(device).eval()
        for base in TRANSFER_FROM:
            check_threat(f"transfer-{base}", threat)
            attack = REGISTRY.build(f"transfer-{base}", threat=threat, surrogate=surrogate, source=label)
            attack.name = f"transfer-{base} from {label}"
            built.append(attack)
    return built


def evaluation_settings(attacks, threat, *, n_examples, batch_size, seed, **identity):
    """What makes two evaluations the same one (``EvalState``'s settings): the built ``attacks``
    with their settings, the threat model, the examples' count, batch size and seed, and
    ``identity`` (the tool's: checkpoint path and hash, the examples' hash...)."""
    if batch_size < 1:
        raise NatError("--batch-size must be at least 1")
    names = [attack.name for attack in attacks]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise NatError(f"attack {repeated[0]!r} is asked for twice")
    return dict(identity, attacks={attack.name: attack.describe() for attack in attacks},
                threat=asdict(threat), n_examples=n_examples, batch_size=batch_size, seed=seed)


def evaluate(model, x, y, attacks, threat, *, batch_size=500, seed=0, device=None, num_classes=None,
             adversary=None, nasty=None, surrogate=None, state=None, progress=True, log=print):
    """Accuracy of ``model`` on ``(x, y)`` (first dim = examples) under each attack in ``attacks``
    (names or built attacks, e.g. ``transfer_attacks``).

    ``threat``: a ``ThreatModel`` (Linf) or a ``SparseThreat(k)`` (l0: the sparse attacks, every
    batch checked for at most k changed pixel locations); an attack of the other one is an error.

    ``adversary`` (a ``FrozenAdversary``) and ``nasty`` (the config's ``NastySpec``) are needed
    for ``nat-adaptive`` only, ``surrogate`` (a [0, 1]-input model) for ``transfer-*``; all
    attacks are built first (``build_attacks``).

    The examples are cut into batches of ``batch_size``; before an attack runs on batch ``b``,
    torch is seeded with ``batch_seed(seed, b)``, so every number depends on the seed and the
    batching only. ``state``: an ``EvalState`` for these settings (``evaluation_settings``); its
    finished batches are skipped and it is saved after every batch (default: a fresh one in
    memory). Under torch.distributed each process attacks every world-size-th batch still to do
    and all of them gather every batch's flags, so every process returns the same results (one
    process would give the same ones).

    Returns one dict per attack: ``attack``, ``accuracy`` (%), ``low``/``high`` (95 % bootstrap
    interval over the examples, %), ``correct``, ``n``, ``settings``, ``seconds`` (compute time,
    summed over batches and processes) and ``flags`` (per example: robust, i.e. correct clean and
    after the attack); each is also passed to ``log``.
    """
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model = model.to(device).eval()
    built = build_attacks(attacks, threat, seed=seed, device=device, num_classes=num_classes,
                          adversary=adversary, nasty=nasty, surrogate=surrogate, progress=progress)
    if state is None:
        state = EvalState(evaluation_settings(built, threat, n_examples=len(x), batch_size=batch_size, seed=seed))
    rank, world = get_dist_info()
    results = []
    for attack in built:
        todo = state.todo(attack.name)
        for step in tqdm(range(0, len(todo), world), desc=attack.name, disable=not progress, leave=False):
            mine = todo[step + rank:step + rank + 1]  # this process's batch of the step (none at the end)
            records = [_attack_batch(model, attack, x, y, batch, threat, seed, device) for batch in mine]
            for record in (r for part in all_gather_object(records) for r in part):
                state.record(attack.name, *record)
            state.save()
        results.append(_result(attack.name, state.flags[attack.name], attack.describe(), state.seconds[attack.name]))
        log(_log_line(results[-1]))
    return results


def _attack_batch(model, attack, x, y, batch, threat, seed, device):
    """``(b, clean, robust, seconds)`` of batch ``(b, start, stop)`` under ``attack``."""
    b, start, stop = batch
    start_time = time.perf_counter()
    torch.manual_seed(batch_seed(seed, b))
    xb, yb = x[start:stop].to(device), y[start:stop].to(device)
    x_adv = attack(model, xb, yb)
    _check_budget(x_adv, xb, threat)
    with torch.no_grad():
        clean = model(xb).argmax(dim=1) == yb
        attacked = model(x_adv).argmax(dim=1) == yb
    return b, clean.tolist(), (clean & attacked).tolist(), time.perf_counter() - start_time


def _result(attack, flags, settings, seconds):
    n, correct = len(flags), sum(flags)
    low, high = bootstrap_interval(flags) if n else (0.0, 0.0)
    return dict(attack=attack, accuracy=100.0 * correct / max(n, 1), low=100.0 * low, high=100.0 * high,
                correct=correct, n=n, settings=settings, seconds=round(seconds, 2), flags=flags)


def _log_line(result):
    return (f"{result['attack']:>14}: {result['accuracy']:6.2f}% [{result['low']:.1f}, {result['high']:.1f}] "
            f"({result['correct']}/{result['n']})  [{result['settings']}]")


def worst_case(results):
    """Robust under every attack of ``results`` (``evaluate``'s, on the same examples), per example,
    with its accuracy and 95 % interval: the report's last line."""
    flags = [all(column) for column in zip(*(r["flags"] for r in results))]
    low, high = bootstrap_interval(flags)
    return dict(accuracy=100.0 * sum(flags) / len(flags), low=100.0 * low, high=100.0 * high, correct=sum(flags),
                n=len(flags), flags=flags)


def results_table(results):
    """``evaluate``'s results as a Markdown table (accuracy, 95 % interval, n, settings)."""
    rows = [dict(r, interval=f"[{r['low']:.1f}, {r['high']:.1f}]") for r in results]
    return markdown_table(rows, [("attack", "attack"), ("accuracy", "accuracy (%)"), ("interval", "95 % CI"),
                                 ("n", "n"), ("settings", "settings")])


