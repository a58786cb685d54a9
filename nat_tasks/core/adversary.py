"""The frozen adversary of NAT: one model or an ensemble (mean of logits), never trained.

``FrozenAdversary`` may be attached to a target model as an attribute (the detection plug-in does
so) and still stays out of everything that belongs to the target: its models are held in a plain
list, so they are not submodules; ``parameters()``, ``state_dict()``, optimizers and DDP never see
them, and a ``.train()`` call on the target does not reach them. Device and dtype moves
(``.to()``, ``.cuda()``) of the parent are forwarded so the adversary follows the target.
"""
import torch
from torch import nn

from .checkpoint import load_weights
from .errors import NatError


class FrozenAdversary(nn.Module):
    def __init__(self, models):
        super().__init__()
        models = list(models) if isinstance(models, (list, tuple)) else [models]
        if not models:
            raise NatError("an adversary needs at least one model")
        for model in models:
            model.eval()
            model.requires_grad_(False)
        # A plain list on purpose: not registered as submodules (see the module docstring).
        self._frozen = models
        self.training = False

    @classmethod
    def from_checkpoints(cls, build_model, checkpoints):
        """Build one model per checkpoint with ``build_model()`` and load its weights strictly."""
        checkpoints = [checkpoints] if isinstance(checkpoints, (str, bytes)) or hasattr(
            checkpoints, "__fspath__") else list(checkpoints)
        return cls([load_weights(build_model(), path, what="adversary checkpoint")
                    for path in checkpoints])

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
    def forward(self, *args, **kwargs):
        """Mean of the members' outputs (logits) on the same input."""
        outputs = [model(*args, **kwargs) for model in self._frozen]
        if len(outputs) == 1:
            return outputs[0]
        return torch.stack(outputs).mean(dim=0)

    def check_num_classes(self, num_classes, probe):
        """Fail clearly when the adversary does not predict ``num_classes`` logits on ``probe``."""
        got = self(probe).shape[-1]
        if got != num_classes:
            raise NatError(f"the adversary predicts {got} classes but the target has {num_classes}")
