"""Task-agnostic NAT pieces: the nasty regularizer and its config vocabulary, the frozen adversary,
the attack engine and the attack registry, the sparse (l0) attacks (``core.sparse``), safe
checkpoint I/O, statistics and sanity checks.

Nothing here imports a task, mmengine, mmdet or torchreid, so the core stays usable with plain
PyTorch:

    from nat_tasks.core import NastyLoss, FrozenAdversary, parse_nasty, build_adversary, pgd
"""
from .adversary import FrozenAdversary, build_adversary, check_adversary_files
from .attack_registry import Attack, AttackRegistry
from .attacks import (NatAdaptiveLoss, eval_mode, fgsm, fgsm_rs, pgd,
                      projected_gradient_ascent)
from .checkpoint import atomic_save, atomic_write_text, load_weights, safe_load
from .errors import NatError, cli_entry
from .nasty import NastyLoss, bernoulli_nasty_kl, nasty_kl
from .nasty_config import NastySpec, parse_nasty
from .pixel import Normalize
from .sparse import SparseBudgetError, check_l0, sparse_autoattack, sparse_rs, spgd, spgd_fast

__all__ = ["FrozenAdversary", "build_adversary", "check_adversary_files", "Attack", "AttackRegistry",
           "NatAdaptiveLoss", "eval_mode", "fgsm", "fgsm_rs", "pgd", "projected_gradient_ascent",
           "atomic_save", "atomic_write_text", "load_weights", "safe_load", "NatError", "cli_entry",
           "NastyLoss", "bernoulli_nasty_kl", "nasty_kl", "NastySpec", "parse_nasty", "Normalize",
           "SparseBudgetError", "check_l0", "sparse_autoattack", "sparse_rs", "spgd", "spgd_fast"]
