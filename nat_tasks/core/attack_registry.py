"""Attacks as objects, torchattacks-style, and one registry of them per task.

An attack is built with its settings (``__init__``), run as ``attack(model, x, y)`` and says what
it did with ``describe()`` (printed and saved next to its result). What ``model``, ``x`` and ``y``
are is the task's: a classifier, images and labels; a detector, its inputs and data samples; a
re-ID embedding, images and guide features.

A task keeps one ``AttackRegistry``; an attack class registers the pattern of the names it answers
to, e.g. ``r'pgd(?P<steps>\\d+)(?:x(?P<restarts>\\d+))?'``: the named groups become settings (integers,
floats, else text, e.g. the base attack of ``transfer-<attack>``). The evaluation tools take their choices, help text and table columns from the
registry, so a new attack is one class in one file.
"""
import inspect
import re

from .errors import NatError


class Attack:
    """Base class. ``name``: the name it was built from; ``column``: its table header."""
    name = None
    column = None

    def __call__(self, model, x, y):
        raise NotImplementedError

    def describe(self):
        return self.name


def _setting(text):
    """A named group's text as a setting: an int, a float, else the text itself."""
    if text.isdigit():
        return int(text)
    try:
        return float(text)
    except ValueError:
        return text


class AttackRegistry:
    """The attacks of one task: ``register(pattern, syntax)`` on a class, ``build(name, **context)``.

    ``context`` holds what a run provides (a threat model, a surrogate, the NAT adversary...); each
    attack receives the entries its ``__init__`` names, and a missing one is one clear error.
    """

    def __init__(self, task):
        self.task = task
        self._kinds = []  # (compiled pattern, syntax, class)

    def register(self, pattern, syntax=None):
        def add(cls):
            self._kinds.append((re.compile(pattern), syntax or pattern, cls))
            return cls
        return add

    def syntax(self):
        """The accepted names, for help texts and error messages."""
        return ", ".join(syntax for _, syntax, _ in self._kinds)

    def kinds(self):
        """The attack classes, in registration order."""
        return [cls for _, _, cls in self._kinds]

    def match(self, name):
        """``(class, settings from the name)``; an unknown name is one clear error."""
        key = str(name).strip().lower()
        for pattern, _, cls in self._kinds:
            found = pattern.fullmatch(key)
            if found:
                return cls, {k: _setting(v) for k, v in found.groupdict().items() if v is not None}
        raise NatError(f"unknown {self.task} attack {name!r}; expected one of: {self.syntax()}")

    def build(self, name, **context):
        cls, settings = self.match(name)
        parameters = inspect.signature(cls).parameters
        takes_any = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
        given = {k: v for k, v in context.items() if takes_any or k in parameters}
        missing = [p.name for p in parameters.values()
                   if p.default is p.empty and p.kind is p.KEYWORD_ONLY
                   and p.name not in given and p.name not in settings]
        if missing:
            raise NatError(f"attack {name!r} needs {', '.join(missing)}")
        try:
            attack = cls(**settings, **given)
        except (TypeError, ValueError) as err:
            raise NatError(f"attack {name!r}: {err}") from None
        attack.name = str(name).strip().lower()
        return attack
