"""Record the examples a block's attacks return, then replay them without attacking again.

A wrapper that evaluates a training method twice on the same adversarial examples (AWP: once on a
proxy copy of the weights, once on the perturbed weights) must not pay for the method's inner
attack twice, and the method's code must stay one function with its attack. Every attack built on
``attacks.projected_gradient_ascent`` (the one engine) goes through ``replayable``: inside
``with tape.recording():`` each call runs and its result is kept; inside ``with tape.replaying():``
each call returns the next kept result instead (its clean input must be the recorded one, else the
method did not repeat itself and the replay fails loudly). Outside both blocks nothing changes.
``recording(after_each=fn)`` calls ``fn()`` after each recorded attack (AWP keeps the BatchNorm
statistics a train-mode attack left on the proxy, so the model gets them as without AWP).

Attacks that do not use the engine (the l0 attacks of ``core/sparse``) are not taped: they run
again when replaying.
"""
import contextlib
import contextvars
import functools

import torch

_ACTIVE = contextvars.ContextVar("attack_tape", default=None)


class AttackTape:
    def __init__(self):
        self._records = []  # (clean input, adversarial result) per engine call, in call order
        self._replaying = None
        self._after_each = None

    @contextlib.contextmanager
    def recording(self, after_each=None):
        self._records, self._replaying, self._after_each = [], None, after_each
        with self._active():
            yield self

    @contextlib.contextmanager
    def replaying(self):
        self._replaying = iter(self._records)
        with self._active():
            yield self
        left = sum(1 for _ in self._replaying)
        self._replaying = None
        if left:
            raise RuntimeError(f"attack replay: {left} recorded attack(s) were not asked for again")

    @contextlib.contextmanager
    def _active(self):
        token = _ACTIVE.set(self)
        try:
            yield
        finally:
            _ACTIVE.reset(token)

    def __len__(self):
        return len(self._records)

    def _run(self, x, attack):
        if self._replaying is None:
            x_adv = attack()
            self._records.append((x, x_adv))
            if self._after_each is not None:
                self._after_each()
            return x_adv
        recorded = next(self._replaying, None)
        if recorded is None or recorded[0].shape != x.shape or not torch.equal(recorded[0], x):
            raise RuntimeError("attack replay: the method's attacks differ from the recorded ones "
                               "(a method that draws its attack inputs at random cannot be replayed)")
        return recorded[1]


def replayable(engine):
    """Decorate the attack engine ``engine(loss_fn, x, **options)`` so the active tape sees it."""
    @functools.wraps(engine)
    def run(loss_fn, x, **options):
        tape = _ACTIVE.get()
        if tape is None:
            return engine(loss_fn, x, **options)
        return tape._run(x, lambda: engine(loss_fn, x, **options))
    return run
