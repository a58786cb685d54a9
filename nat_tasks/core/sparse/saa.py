"""sparse-AutoAttack (sAA; Zhong & Liu, ICML 2024): sPGD (unprojected) -> sPGD (projected) ->
Sparse-RS, each stage on the examples the previous ones did not fool.

Paper defaults (fact sheet; CIFAR): k = 20, 10000 sPGD iterations with patience 3, 10000
Sparse-RS queries (p_init 0.8, CE), batch 500; ImageNet-100: k = 200 (Sparse-RS 3000 queries,
p_init 0.3, margin loss). Every budget is an argument.

Per example sAA is never weaker than any of its stages run alone with the same seed: each stage
starts from the same state of torch's global generator (saved once, restored before each stage),
every stage consumes that generator by one draw only, and a stage's random draws do not depend on
which examples it attacks. So an example that survives sAA survives every stage run alone.
"""
import time

import torch

from ..attacks import eval_mode
from .budget import check_k, check_l0
from .spgd import EVAL_PATIENCE, spgd
from .sparse_rs import sparse_rs

STAGES = ("spgd-unproj", "spgd-proj", "sparse-rs")
SAA_STEPS = 10000
SAA_QUERIES = 10000


def sparse_autoattack(model, x, y, *, k, steps=SAA_STEPS, patience=EVAL_PATIENCE, queries=SAA_QUERIES, p_init=0.8,
                      rs_loss="ce", spgd_loss="ce", progress=False, return_info=False):
    """The cascade on [0, 1] images; returns ``x_adv``, and with ``return_info`` also a dict with
    ``clean`` (bool per example) and ``stages``, one dict per stage: ``stage``, ``attacked``
    (examples it ran on), ``fooled``, ``seconds``, ``robust`` (bool per example after it) and
    ``evaluations`` (image forward passes it made; sPGD's also back-propagate but the last).

    An example misclassified clean is not attacked (it counts as broken); an example a stage fools
    gets that stage's image; one never fooled gets the last stage's. ``spgd_loss``: the sPGD stages'
    loss (``spgd``'s ``loss``: ``'ce'`` as the reference's current code, or ``'adaptive'``).
    """
    k = check_k(k, x)
    x = x.detach()
    with torch.no_grad(), eval_mode(model):
        robust = model(x).argmax(dim=1) == y
    clean = robust.clone()
    x_adv, info = x.clone(), []
    state = torch.get_rng_state()

    def spgd_stage(projected):
        def run(act):
            out, stats = spgd(model, x, y, k=k, steps=steps, projected=projected, patience=patience, loss=spgd_loss,
                              active=act, progress=progress, return_info=True)
            return out, int((stats["iterations"][act] + 1).sum())
        return run

    def rs_stage(act):
        out, stats = sparse_rs(model, x, y, k=k, queries=queries, p_init=p_init, loss=rs_loss, active=act,
                               progress=progress, return_info=True)
        return out, int(stats["queries"][act].sum())

    runs = (spgd_stage(False), spgd_stage(True), rs_stage)
    for stage, run in zip(STAGES, runs):
        torch.set_rng_state(state)
        start, attacked = time.perf_counter(), int(robust.sum())
        fooled = evaluations = 0
        if attacked:
            out, evaluations = run(robust.clone())
            rows = robust.nonzero().squeeze(1)
            with torch.no_grad(), eval_mode(model):
                still = model(out[rows]).argmax(dim=1) == y[rows]
            x_adv[rows] = out[rows]
            robust[rows[~still]] = False
            fooled = int((~still).sum())
        else:
            torch.randint(0, 2 ** 62, (1,))  # the one draw a stage takes, so the stream stays aligned
        info.append(dict(stage=stage, attacked=attacked, fooled=fooled, seconds=time.perf_counter() - start,
                         robust=robust.clone(), evaluations=evaluations))
    check_l0(x_adv, x, k)
    if return_info:
        return x_adv, dict(clean=clean, stages=info)
    return x_adv
