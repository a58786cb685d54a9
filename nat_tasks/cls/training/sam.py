"""Sharpness-aware minimisation (SAM, Foret et al. 2021) as an mmengine optimizer wrapper: Table 8's
SAM-trained adversary is vanilla training with it.

    optim_wrapper = dict(type='SAMOptimWrapper', rho=0.05, adaptive=False,
                         optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=5e-4))

One step: g = grad L(w); e = rho g / ||g|| (``adaptive=True``: ASAM, e = rho w^2 g / ||w g||, per
coordinate); the base optimizer then steps from w with grad L(w + e). The gradient norm is global,
over all parameters (as in Foret et al.'s code and davda54/sam, the implementation most code bases
copy). The second forward pass runs in train mode but leaves BatchNorm running statistics alone (BN
momentum 0), so they count each batch once, as davda54/sam's example does.

SAM needs a second forward/backward pass at w + e, and mmengine's ``train_step`` hands the wrapper
only the first loss. So ``optim_context`` (which ``train_step`` enters around the forward) records
the model's forward call, and ``update_params`` replays it at the perturbed weights: any method's
loss (``vanilla``, ``pgd_at``, ...) works, with one process or DDP, and the model class is untouched.
No well-kept SAM on PyPI fits mmengine's wrapper (pytorch-optimizer's ``SAM`` wraps the optimizer
class and wants a closure); the tests check this one against it.
"""
from contextlib import contextmanager

import torch
from mmengine.optim import OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS
from torch import nn

from nat_tasks.core.errors import NatError

EPS = 1e-12  # added to the gradient norm (Foret et al.; davda54/sam)


@OPTIM_WRAPPERS.register_module()
class SAMOptimWrapper(OptimWrapper):
    def __init__(self, optimizer, rho=0.05, adaptive=False, **kwargs):
        super().__init__(optimizer, **kwargs)
        if not float(rho) > 0:
            raise NatError(f"SAMOptimWrapper: rho must be positive, got {rho}")
        if self._accumulative_counts != 1:
            raise NatError("SAMOptimWrapper: accumulative_counts must be 1 (each step needs both passes "
                           "on the same batch)")
        self.rho, self.adaptive = float(rho), bool(adaptive)
        self._forward_call = None

    @contextmanager
    def optim_context(self, model):
        """``OptimWrapper``'s context, recording the model's (first) forward call for the replay."""
        def record(module, args, kwargs):
            if self._forward_call is None:
                self._forward_call = (module, args, kwargs)

        self._forward_call = None
        handle = model.register_forward_pre_hook(record, with_kwargs=True)
        try:
            with super().optim_context(model):
                yield
        finally:
            handle.remove()

    def update_params(self, loss, step_kwargs=None, zero_kwargs=None):
        if self._forward_call is None:
            raise NatError("SAMOptimWrapper.update_params needs the loss's forward pass inside "
                           "optim_context(model), as the model's train_step runs it")
        model, args, kwargs = self._forward_call
        self._forward_call = None
        self.backward(loss)
        originals = self._ascend()
        self.zero_grad()
        with _bn_statistics_frozen(model):
            losses = model(*args, **kwargs)
        getattr(model, "module", model).parse_losses(losses)[0].backward()  # module: under DDP
        with torch.no_grad():
            for param, original in originals:
                param.copy_(original)
        self.step(**(step_kwargs or {}))
        self.zero_grad(**(zero_kwargs or {}))

    @torch.no_grad()
    def _ascend(self):
        """w <- w + e (see the module docstring); returns (parameter, original value) pairs."""
        params = [p for group in self.optimizer.param_groups for p in group["params"] if p.grad is not None]
        if not params:
            return []
        scaled = [(p.abs() * p.grad if self.adaptive else p.grad) for p in params]
        scale = self.rho / (torch.stack([s.norm(2) for s in scaled]).norm(2) + EPS)
        originals = [(p, p.clone()) for p in params]
        for p, s in zip(params, scaled):
            p.add_((p.abs() if self.adaptive else 1.0) * s * scale)
        return originals


@contextmanager
def _bn_statistics_frozen(model):
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m.momentum, m.num_batches_tracked.clone() if m.num_batches_tracked is not None else None)
             for m in norms]
    for m in norms:
        m.momentum = 0.0
    try:
        yield
    finally:
        for m, (momentum, tracked) in zip(norms, saved):
            m.momentum = momentum
            if tracked is not None:
                m.num_batches_tracked.copy_(tracked)
