"""The frozen adversary of NAT: one model or an ensemble (mean of logits), never trained.

``FrozenAdversary`` may be attached to a target model as an attribute (the detection plug-in does
so) and still stays out of everything that belongs to the target: its models are held in a plain
list, so they are not submodules; ``parameters()``, ``state_dict()``, optimizers and DDP never see
them, and a ``.train()`` call on the target does not reach them. Device and dtype moves
(``.to()``, ``.cuda()``) of the parent are forwarded so the adversary follows the target.

``precision``: the adversary only supplies a soft target, so it may run under ``torch.autocast`` in
``'bfloat16'`` or ``'float16'`` (a teacher in mixed precision) while the target trains in float32;
its logits are returned in float32. Its weights and image inputs then also take the channels-last
layout that tensor-core (GPU) and oneDNN (CPU) reduced-precision convolutions prefer. Together that
cuts its forward pass 2-3x where the hardware has fast bfloat16/float16 (recent GPUs; CPUs with
AVX512-BF16 or AMX); on hardware without it keep the default ``None``: the caller's precision and
layout, the models untouched.

Reduced precision is verified, not trusted: the first batch of every input shape also runs in the
caller's precision, and a shape whose reduced-precision logits are not finite or differ by more
than ``RTOL`` of the logits' scale runs in the caller's precision from then on, with a warning.
(Healthy bfloat16 differs by ~0.4 %; torch 2.14's oneDNN bfloat16 3x3/stride-2 convolution on a
4x2 map returns NaN or garbage on an AMX CPU, which this catches.)
"""
import os
import warnings

import torch
from torch import nn

from .errors import NatError


PRECISIONS = {"bfloat16": torch.bfloat16, "float16": torch.float16}
RTOL = 0.05  # of max(1, max |logit|): far above rounding (~0.004), far below a broken kernel


def check_precision(precision):
    if precision is not None and precision not in PRECISIONS:
        raise NatError(f"adversary precision {precision!r}; expected None (the caller's) or one of "
                       f"{', '.join(PRECISIONS)}")
    return precision


class FrozenAdversary(nn.Module):
    def __init__(self, models, precision=None):
        super().__init__()
        check_precision(precision)
        models = list(models) if isinstance(models, (list, tuple)) else [models]
        if not models:
            raise NatError("an adversary needs at least one model")
        for model in models:
            model.eval()
            model.requires_grad_(False)
            if precision is not None:
                model.to(memory_format=torch.channels_last)  # 4-D weights only; a no-op for others
        # A plain list on purpose: not registered as submodules (see the module docstring).
        self._frozen = models
        self.training = False
        self.precision = precision
        self._faithful = {}  # (shape, device, dtype) of an input -> reduced precision verified ok

    @property
    def models(self):
        return tuple(self._frozen)

    def train(self, mode=True):
        return self  # always eval: BN/dropout statistics of the adversary never change

    def _apply(self, fn, *args, **kwargs):
        for model in self._frozen:
            model._apply(fn, *args, **kwargs)
        return super()._apply(fn, *args, **kwargs)

    @torch.no_grad()
    def forward(self, x, *args, **kwargs):
        """Mean of the members' outputs (logits) on the same input (float32 under ``precision``)."""
        if self.precision is None:
            return self._mean_logits(x, *args, **kwargs)
        key = (tuple(x.shape), x.device, x.dtype)
        if key not in self._faithful:
            reduced = self._reduced_logits(x, *args, **kwargs)
            exact = self._mean_logits(x, *args, **kwargs)
            self._faithful[key] = _close(reduced, exact)
            if not self._faithful[key]:
                warnings.warn(f"the adversary's {self.precision} logits on inputs of shape "
                              f"{tuple(x.shape)} are not finite or far from its exact ones (a "
                              f"{x.device.type} kernel problem); that shape runs without autocast")
            return reduced if self._faithful[key] else exact
        run = self._reduced_logits if self._faithful[key] else self._mean_logits
        return run(x, *args, **kwargs)

    def differentiable(self, x, *args, **kwargs):
        """Mean logits with autograd to the *input*, in the caller's precision.

        For an attacker who knows the adversary (eq. 14): the members stay frozen (eval mode,
        ``requires_grad=False``, so no parameter ever gets a gradient), but ``x`` does.
        """
        with torch.enable_grad():
            return self._mean_logits(x, *args, **kwargs)

    def _mean_logits(self, x, *args, **kwargs):
        return _mean([model(x, *args, **kwargs) for model in self._frozen])

    def _reduced_logits(self, x, *args, **kwargs):
        if x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(x.device.type, dtype=PRECISIONS[self.precision]):
            outputs = [model(x, *args, **kwargs) for model in self._frozen]
        return _mean([out.float() for out in outputs])  # the ensemble mean in float32

    def check_num_classes(self, num_classes, probe):
        """Fail clearly when the adversary does not predict ``num_classes`` logits on ``probe``."""
        got = self(probe).shape[-1]
        if got != num_classes:
            raise NatError(f"the adversary predicts {got} classes but the target has {num_classes}")


def _mean(outputs):
    return outputs[0] if len(outputs) == 1 else torch.stack(outputs).mean(dim=0)


def _close(reduced, exact):
    scale = max(1.0, exact.abs().max().item())
    if not torch.isfinite(reduced).all():
        return False
    return (reduced - exact).abs().max().item() <= RTOL * scale


RANDOM_INIT = "random:"  # checkpoint='random:<seed>': an untrained member (Table 8's random state)


def random_init_seed(member):
    """The seed of a member whose ``checkpoint`` is ``'random:<seed>'`` (its weights are the
    architecture's initialisation under ``torch.manual_seed(seed)``), else ``None``."""
    path = member["checkpoint"]
    if not path.startswith(RANDOM_INIT):
        return None
    try:
        return int(path[len(RANDOM_INIT):])
    except ValueError:
        raise NatError(f"checkpoint {path!r}: a random initialisation is 'random:<integer seed>'") from None


def check_adversary_files(spec, train_command=None, role="adversary"):
    """Fail fast, before anything is built, when an adversary checkpoint of ``spec`` (a
    ``NastySpec``) is missing; ``train_command(member)`` names the command that trains it;
    ``role`` names the frozen model in the message (a distillation teacher is held the same way)."""
    for member in spec.members:
        if random_init_seed(member) is None and not os.path.isfile(member["checkpoint"]):
            command = train_command(member) if train_command else None
            hint = f"; train it first: `{command}`" if command else ""
            raise NatError(f"{role} checkpoint not found: {member['checkpoint']}{hint}")


def build_adversary(spec, build_member, train_command=None, role="adversary", build_untrained=None):
    """The ``FrozenAdversary`` of a ``NastySpec``: ``build_member(member)`` (the task's callback)
    returns one model with its weights loaded from ``member['checkpoint']``; ``train_command``
    and ``role``: see ``check_adversary_files``. ``build_untrained(member)`` returns the member's
    model freshly initialised, for ``checkpoint='random:<seed>'`` (a task without it refuses such
    members); it runs under that seed and leaves the caller's random state as it was."""
    check_adversary_files(spec, train_command, role)
    models = []
    for member in spec.members:
        seed = random_init_seed(member)
        if seed is None:
            models.append(build_member(member))
            continue
        if build_untrained is None:
            raise NatError(f"{role} checkpoint {member['checkpoint']!r}: a randomly initialised {role} "
                           "is not available here; give a checkpoint file")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            models.append(build_untrained(member))
    return FrozenAdversary(models, spec.precision)
