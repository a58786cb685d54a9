"""AWP (Wu et al., NeurIPS 2020): adversarial weight perturbation around any registered method.

``<base>_awp`` (registered here for ``pgd_at``, ``trades``, ``nat`` and ``mart``; ``register_awp``
adds others) takes the base method's settings plus ``gamma`` and ``warmup``:

    method=dict(type='trades_awp', eps=8/255, alpha=2/255, steps=10, beta=6.0, gamma=5e-3, warmup=9)

One training step, as the reference (csdongxian/AWP ``utils_awp.py`` and its train loops):
1. The base method runs on a proxy copy of the model (weights and BatchNorm statistics loaded from
   the model). Its inner attack is crafted there, on the unperturbed weights, and recorded
   (``core.attack_tape``). The BatchNorm statistics the proxy holds after the attack go to the
   model (a train-mode attack updates them, as the reference's attack on the model does); the
   updates of the proxy's loss forwards are thrown away (as the reference's proxy's).
2. One ascent step on the base method's loss gives, per layer, the direction ``g_l`` (the loss's
   gradient); the perturbation is ``v_l = gamma * ||w_l|| * g_l / ||g_l||`` (layer-wise relative
   size) for every multi-dimensional ``*weight*`` tensor (conv and linear weights; not BatchNorm,
   biases or embeddings), as the reference's ``diff_in_weights``. The reference takes an SGD step
   on the proxy and normalises the difference: the same direction, whatever its learning rate.
3. ``v`` is added to the model's weights and the base method runs again on them with the recorded
   adversarial examples replayed (no second attack): the training loss ``L(w + v)``.
4. After the optimizer's step, ``v`` is subtracted: ``w <- w + v - lr * step(L'(w + v)) - v``.
``warmup``: the first ``warmup`` epochs (mmengine's 0-based epoch) train the base method alone.
The TRADES-AWP reference's ``--awp-warmup 10`` with its 1-based loop (``epoch >= 10``) is 9 epochs
without AWP: ``warmup=9`` here (``configs/cls/cifar10_preact18_trades_awp.py``).
Outside an mmengine runner (no epoch) AWP is on from the first step.

Cost over the base method: one more forward and backward (the proxy's), a copy of the weights,
and the base's forwards that are not engine attacks run twice (TRADES' no-grad clean prediction,
NAT's frozen adversary). Attacks not built on the engine (``core/sparse``) would run twice, the
second on ``w + v``. Random numbers: the second run draws those the first drew (a method drawing
before its attack, e.g. mixup's partners, sees the same draws), and the step leaves the generators
where the first run left them, as the base method alone would.

Where step 4 happens: an optimizer step post-hook (torch's ``register_optimizer_step_post_hook``,
acting only for the optimizer that owns the perturbed weights). It runs inside any loop: mmengine's
``OptimWrapper.update_params``, its DDP wrapper (``MMDistributedDataParallel.train_step`` never calls
the model's ``train_step``), or a plain PyTorch loop, with nothing to configure. A step that does
not happen (a float16 overflow skipped by the loss scaler, gradient accumulation) leaves ``v`` in
place; the next AWP step removes it first, so perturbations never pile up.

Under DDP each rank's proxy gradient is averaged over the ranks before ``v`` is formed: ``v`` is
the same on every rank (the gradient of the global batch's loss, as the reference's DataParallel
proxy), so weight decay and momentum, which see ``w + v``, keep the replicas identical.

The per-model state (the proxy, the perturbation in place) is kept beside the model, not in it: as
a submodule it would be saved in checkpoints, optimised and synchronised by DDP.
"""
import copy
import functools
import inspect
import weakref

import torch
from mmengine.dist import all_reduce, get_world_size
from torch.optim.optimizer import register_optimizer_step_post_hook

from nat_tasks.core.attack_tape import AttackTape
from nat_tasks.core.errors import NatError

from nat_tasks.runtime.run_progress import runner_epoch

from nat_tasks.cls.methods.registry import METHODS, register_method

NORM_EPS = 1e-20  # the reference's EPS in ||w|| / (||diff|| + EPS)


def perturbed_weights(model):
    """The parameters AWP perturbs: multi-dimensional tensors whose name contains ``weight``."""
    return [p for name, p in model.named_parameters() if p.dim() > 1 and "weight" in name]


def relative_perturbation(weights, directions, gamma):
    """``gamma * ||w_l|| * d_l / ||d_l||`` per layer (a zero direction gives a zero perturbation)."""
    return [gamma * w.detach().norm() * d / (d.norm() + NORM_EPS) for w, d in zip(weights, directions)]


def training_loss(terms):
    """The loss mmengine trains on: the sum of the terms whose name contains ``loss``."""
    return sum(value.mean() for key, value in terms.items() if "loss" in key)


def mean_over_ranks(tensors):
    """The element-wise mean of ``tensors`` over the DDP ranks (one all-reduce; as is in one process)."""
    if get_world_size() <= 1:
        return tensors
    flat = torch.cat([t.reshape(-1) for t in tensors])
    all_reduce(flat, op="mean")
    return [chunk.view_as(t) for chunk, t in zip(flat.split([t.numel() for t in tensors]), tensors)]


def rng_state(model):
    """The CPU generator's state and that of the model's CUDA device, if any."""
    device = next(model.parameters()).device
    return torch.get_rng_state(), (device, torch.cuda.get_rng_state(device) if device.type == "cuda" else None)


def set_rng_state(state):
    cpu, (device, cuda) = state
    torch.set_rng_state(cpu)
    if cuda is not None:
        torch.cuda.set_rng_state(cuda, device)


class WeightPerturbation:
    """AWP's state for one model: its proxy copy and the perturbation currently in its weights."""

    def __init__(self):
        self.proxy = None
        self.applied = []  # (weight, v) pairs while the model's weights are perturbed
        self.tape = AttackTape()
        handle = register_optimizer_step_post_hook(functools.partial(_remove_after_step, weakref.ref(self)))
        weakref.finalize(self, handle.remove)

    def step(self, model, run_base, *, gamma, warmup):
        """``run_base(module) -> terms`` on ``model + v`` (the terms to train on); see the module doc."""
        self.remove()
        epoch = runner_epoch()
        if gamma == 0 or (epoch is not None and epoch < warmup):
            return run_base(model)
        proxy = self._synced_proxy(model)
        # The second run draws the random numbers the first drew (e.g. mixup's partners, before
        # the attack); afterwards the generators stand where the first run left them, so every
        # step consumes what the base method would (the next step's random start is a new one).
        before = rng_state(model)
        attacked = {}
        with self.tape.recording(after_each=lambda: attacked.update(_buffers(proxy))):
            proxy_loss = training_loss(run_base(proxy))
        after = rng_state(model)
        weights = perturbed_weights(proxy)
        grads = torch.autograd.grad(proxy_loss, weights, allow_unused=True)
        grads = mean_over_ranks([torch.zeros_like(w) if g is None else g for w, g in zip(weights, grads)])
        targets = perturbed_weights(model)
        with torch.no_grad():
            for weight, v in zip(targets, relative_perturbation(targets, grads, gamma)):
                weight.add_(v)
                self.applied.append((weight, v))
        _load_buffers(model, attacked)
        set_rng_state(before)
        with self.tape.replaying():
            terms = run_base(model)
        set_rng_state(after)
        return terms

    def remove(self):
        """Subtract the perturbation in place, if any."""
        with torch.no_grad():
            for weight, v in self.applied:
                weight.sub_(v)
        self.applied = []

    def owned_by(self, optimizer):
        ids = {id(p) for group in optimizer.param_groups for p in group["params"]}
        return any(id(weight) in ids for weight, _ in self.applied)

    def _synced_proxy(self, model):
        reference = next(model.parameters())
        current = None if self.proxy is None else next(self.proxy.parameters())
        if current is None or (current.device, current.dtype) != (reference.device, reference.dtype):
            self.proxy = _detached_copy(model)
        self.proxy.load_state_dict(model.state_dict())
        self.proxy.train(model.training)
        return self.proxy


def _detached_copy(model):
    """A deep copy of ``model`` without ``.grad`` fields (the proxy's gradients are never stored)."""
    proxy = copy.deepcopy(model)
    for p in proxy.parameters():
        p.grad = None
    return proxy


def _buffers(module):
    return {name: b.detach().clone() for name, b in module.named_buffers()}


def _load_buffers(module, buffers):
    with torch.no_grad():
        for name, b in module.named_buffers():
            if name in buffers:
                b.copy_(buffers[name])


def _remove_after_step(state_ref, optimizer, args, kwargs):
    state = state_ref()
    if state is not None and state.applied and state.owned_by(optimizer):
        state.remove()


_STATES = weakref.WeakKeyDictionary()  # model -> WeightPerturbation


def state_of(model):
    if model not in _STATES:
        _STATES[model] = WeightPerturbation()
    return _STATES[model]


def register_awp(base_name):
    """Register ``<base_name>_awp``: the base method's parameters (settings, context, batch extras)
    plus ``gamma`` (the perturbation's size relative to each layer's weight norm) and ``warmup``."""
    base = METHODS[base_name]
    signature = inspect.signature(base)
    extra = [inspect.Parameter("gamma", inspect.Parameter.KEYWORD_ONLY),
             inspect.Parameter("warmup", inspect.Parameter.KEYWORD_ONLY, default=0)]

    def method(model, x, y, *, gamma, warmup=0, **base_parameters):
        if not (gamma >= 0 and warmup >= 0 and int(warmup) == warmup):
            raise NatError(f"method {base_name}_awp: gamma={gamma} and warmup={warmup} must be >= 0 "
                           "(warmup a whole number of epochs)")
        return state_of(model).step(model, lambda module: base(module, x, y, **base_parameters),
                                    gamma=gamma, warmup=warmup)

    method.__signature__ = signature.replace(parameters=[*signature.parameters.values(), *extra])
    method.__doc__ = f"``{base_name}`` with adversarial weight perturbation (``methods/awp.py``)."
    return register_method(f"{base_name}_awp")(method)


for _base in ("pgd_at", "trades", "nat", "mart"):
    register_awp(_base)
