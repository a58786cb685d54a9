"""RAP's objective (the authors' label + shape terms) on known numbers."""
import math

import torch


def test_rap_objective_on_known_numbers():
    from nat_tasks.det.rap import rap_objective

    # Image 0: two proposals with p(no object) 1/2 and 1/4, offsets 0.1 and 0.3 from the clean ones;
    # a third anchor is not a proposal. Image 1: no proposal (constant loss).
    log_no_object = torch.log(torch.tensor([[0.5, 0.25, 0.01], [0.5, 0.5, 0.5]]))
    clean = torch.zeros(2, 3, 4)
    deltas = torch.stack([torch.tensor([[0.1] * 4, [-0.3] * 4, [5.0] * 4]), torch.ones(3, 4)])
    proposals = torch.tensor([[True, True, False], [False, False, False]])
    loss = rap_objective(log_no_object, deltas, clean, proposals)
    label = (math.log(2) + math.log(4)) / 2                    # mean -log(1 - s)
    shape = math.exp(-(4 * 0.10001 + 4 * 0.29999) / 8)         # exp(-mean |d - d_clean + 1e-5|)
    torch.testing.assert_close(loss, torch.tensor([0.5 * label + 0.5 * shape, 0.5 * 0.0 + 0.5 * 1.0]))
