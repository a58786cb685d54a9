"""Each attack's per-example results kept on disk, so asking again for an attack already run on the
same model and examples reads it back instead of attacking again (the robustness report, the demo).

``evaluate_each`` runs every attack in its own resumable evaluation state (``eval_state``):
``<folder>/<attack>-<hash of its settings>.state.json``. The settings are those of
``evaluation_settings`` (the attack's own, the threat model, examples, batch size, seed) plus the
identity of the checkpoint and examples (``eval_setup.state_identity``), so another checkpoint,
example set or setting is another file. An unfinished state continues where it stopped, a finished
one is read. The numbers equal those of one ``evaluate`` call with all the attacks: every batch is
seeded from the seed and its index only.
"""
import hashlib
import json
import os
import re

from nat_tasks.cls.evaluation.eval_setup import needs, state_identity
from nat_tasks.cls.evaluation.eval_state import open_state
from nat_tasks.cls.evaluation.evaluation import build_attacks, evaluate, evaluation_settings


def evaluate_each(model, x, y, attacks, threat, folder, *, checkpoint, nasty=None, surrogate_spec=None,
                  batch_size=500, seed=0, device=None, num_classes=None, adversary=None, surrogate=None,
                  progress=True, log=print):
    """``evaluate``'s results for ``attacks`` (names), each kept in ``folder``. ``checkpoint``: the
    file ``model``'s weights came from; ``nasty`` (with ``adversary``) for nat-adaptive,
    ``surrogate_spec`` (``CONFIG:CHECKPOINT``, with the loaded ``surrogate``) for transfer-*:
    they identify the other models' weights."""
    run = dict(seed=seed, device=device, num_classes=num_classes, adversary=adversary, nasty=nasty,
               surrogate=surrogate)
    results = []
    for name, attack in zip(attacks, build_attacks(attacks, threat, **run)):  # every one checked first
        surrogates = [surrogate_spec] if surrogate_spec and needs([name], "surrogate") else []
        identity = state_identity(checkpoint, [name], x, y, nasty, surrogates)
        settings = evaluation_settings([attack], threat, n_examples=len(x), batch_size=batch_size, seed=seed,
                                       **identity)
        state = open_state(_path(folder, attack.name, settings), settings, resume=True, log=_quiet)
        if not state.todo(attack.name):
            log(f"{attack.name}: read back from {state.path}")
        os.makedirs(folder, exist_ok=True)
        results += evaluate(model, x, y, [attack], threat, batch_size=batch_size, state=state, progress=progress,
                            log=log, **run)
    return results


def _path(folder, name, settings):
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return os.path.join(folder, f"{re.sub(r'[^A-Za-z0-9.+-]+', '_', name)[:60]}-{digest}.state.json")


def _quiet(*_args, **_kwargs):
    """``open_state``'s notes speak of --resume, an option the report does not have."""
