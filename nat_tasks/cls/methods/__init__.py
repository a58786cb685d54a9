"""Training methods: each is ONE loss function with its inner attack (the style of TRADES' code).

A method has the signature ``method(model, x, y, **settings) -> dict`` of named terms (settings,
context objects and per-batch extras: ``registry.py``). Terms whose
name contains ``loss`` are summed into the training loss (mmengine's convention) and every term is
logged on its own; the other entries (``ce_clean``, ``ce_adv``) are detached diagnostics. ``x`` is
a batch of [0, 1] images, ``model`` takes [0, 1] images (it normalises inside), budgets are in
pixel units. A config selects one by name: ``method=dict(type='nat', eps=8/255, ...)``.

Each inner attack follows the method's reference code by default (the mode it crafts in, where it
starts) and the settings ``attack_mode`` ('train' / 'eval') and ``attack_init`` ('uniform' /
'normal' / 'none') switch to the other choice; the table is ``docs/advanced/reference_defaults.md``.
In train mode BatchNorm normalises the attack's forwards with the adversarial batch's statistics and
updates its running statistics (PGD-AT's reference); in eval mode the attack sees the network that
evaluation sees and leaves them alone (TRADES'). The model's mode is restored after the attack; the
loss forwards run in the caller's (train) mode.
"""
from nat_tasks.cls.methods.registry import METHODS, Method, build_method, register_context, register_method
from nat_tasks.cls.methods import standard  # noqa: F401,E402  (registers vanilla, pgd_at, trades, nat)
from nat_tasks.cls.methods import distillation  # noqa: F401,E402  (rslad, ard, iad: model.teacher)
from nat_tasks.cls.methods import self_adaptive, sparse  # noqa: F401,E402  (sat_trades; sparse_at, sparse_trades, fast_ls_l0, *_nat)
from nat_tasks.cls.methods import mart, regularizers, awp  # noqa: F401,E402  (mart; nt, at_lasso/emr/nnr/mixup; *_awp)

__all__ = ["METHODS", "Method", "build_method", "register_context", "register_method"]
