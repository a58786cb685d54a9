"""The method registry and ``build_method``: a config's ``model.method`` -> a callable ``Method``.

A method is a function ``fn(model, x, y, *, <settings>, <context>, <batch>) -> dict`` of named terms:
- settings: the config's keys (``eps``, ``steps``, ``beta``, ...), checked when the run is built;
- context: objects the run builds from other config sections and binds once (``adversary`` and
  ``nasty_loss`` from ``model.nasty``; a section module registers its names with
  ``register_context`` so a missing section is one line naming it);
- batch: per-batch extras the data loader provides (``index``: the examples' positions in the
  training set, for per-example state such as self-adaptive soft targets), passed only to the
  methods that declare them.
"""
import inspect

from nat_tasks.core.attacks import ATTACK_MODES, STARTS
from nat_tasks.core.errors import NatError, check_eps

METHODS = {}
# context name -> the config section that provides it (quoted when a method needs it and it is missing)
CONTEXT_SECTIONS = {
    "adversary": "model.nasty=dict(weight=..., tau=..., adversary=dict(arch=..., checkpoint=...))",
    "nasty_loss": "model.nasty=dict(weight=..., tau=..., adversary=dict(arch=..., checkpoint=...))",
    # the running epoch (a callable), which the trainer always offers (run_progress.runner_epoch)
    "epoch_source": "epoch_source=<callable returning the 0-based epoch>",
}
BATCH_KEYS = ("index",)


def register_method(name):
    def register(fn):
        METHODS[name] = fn
        return fn
    return register


def register_context(name, section):
    """Declare a context object ``name`` that config ``section`` provides (for the error message)."""
    CONTEXT_SECTIONS[name] = section


def _check_attack_settings(name, settings):
    if "eps" in settings:
        check_eps(settings["eps"], what=f"method {name}: eps")
    if "alpha" in settings and not 0.0 < float(settings["alpha"]) <= 1.0:
        raise NatError(f"method {name}: alpha={settings['alpha']} is outside (0, 1] (pixel units)")
    if "steps" in settings and (int(settings["steps"]) != settings["steps"] or settings["steps"] < 1):
        raise NatError(f"method {name}: steps must be a positive integer, got {settings['steps']}")
    for key, choices in (("attack_mode", ATTACK_MODES), ("attack_init", STARTS)):
        if key in settings and settings[key] not in choices:
            raise NatError(f"method {name}: {key}={settings[key]!r}; expected one of {', '.join(choices)}")


class Method:
    """A method with its settings bound: ``method(model, x, y, **batch) -> dict`` of loss terms.

    ``settings`` stays a mutable dict so schedules (e.g. ``EpsWarmupHook``) can change the attack
    budget during training; ``context``: what the run provides (NAT's adversary and nasty loss).
    ``batch_keys``: the per-batch extras the method takes (others given to ``__call__`` are dropped).
    """

    def __init__(self, name, settings, context):
        self.name, self.settings, self.context = name, settings, context
        self._fn = METHODS[name]
        self.batch_keys = tuple(key for key in BATCH_KEYS if key in inspect.signature(self._fn).parameters)

    def __call__(self, model, x, y, **batch):
        missing = [key for key in self.batch_keys if batch.get(key) is None]
        if missing:
            raise NatError(f"method {self.name} needs the batch's {missing[0]!r} "
                           "(the training data set must return it)")
        extras = {key: batch[key] for key in self.batch_keys}
        return self._fn(model, x, y, **self.settings, **self.context, **extras)

    def __repr__(self):
        return f"Method({self.name}, {self.settings})"


def build_method(cfg, **offered):
    """``cfg = dict(type=name, **settings)`` -> a ``Method``; unknown names or settings fail clearly.

    ``offered``: the context objects the run built (``adversary``, ``nasty_loss``, ...); the method
    binds those its function declares, and a declared one that is missing names its config section.
    """
    settings = dict(cfg)
    name = settings.pop("type", None)
    if name not in METHODS:
        raise NatError(f"unknown method {name!r}; expected one of {', '.join(METHODS)}")
    parameters = inspect.signature(METHODS[name]).parameters
    context = {}
    for key in parameters:
        if key in CONTEXT_SECTIONS:
            if offered.get(key) is None:
                raise NatError(f"method {name} needs {CONTEXT_SECTIONS[key]}")
            context[key] = offered[key]
    batch = {key: None for key in BATCH_KEYS if key in parameters}
    try:
        inspect.signature(METHODS[name]).bind(None, None, None, **settings, **context, **batch)
    except TypeError as err:
        raise NatError(f"method {name}: {err}") from None
    _check_attack_settings(name, settings)
    return Method(name, settings, context)
