"""The sparse (l0) threat model, plain PyTorch: sPGD (white box, with a 1-step training mode),
Sparse-RS (black box) and the sparse-AutoAttack cascade, plus the budget check every adversarial
batch passes (at most k pixel locations changed, all channels of a location counting once; values
in [0, 1]).

    from nat_tasks.core.sparse import spgd, spgd_fast, sparse_rs, sparse_autoattack, check_l0
"""
from .budget import SparseBudgetError, changed_locations, check_k, check_l0
from .saa import SAA_QUERIES, SAA_STEPS, STAGES, sparse_autoattack
from .sparse_rs import accept, p_schedule, sparse_rs, swap_count
from .spgd import (EVAL_PATIENCE, TRAIN_PATIENCE, TRAIN_STEPS, spgd, spgd_fast, spgd_gradients, topk_mask,
                   update_magnitude, update_mask)

__all__ = ["SparseBudgetError", "changed_locations", "check_k", "check_l0", "SAA_QUERIES", "SAA_STEPS", "STAGES",
           "sparse_autoattack", "accept", "p_schedule", "sparse_rs", "swap_count", "EVAL_PATIENCE",
           "TRAIN_PATIENCE", "TRAIN_STEPS", "spgd", "spgd_fast", "spgd_gradients", "topk_mask", "update_magnitude",
           "update_mask"]
