"""Self-adaptive training's soft targets (core.soft_targets): the update rule and the loss on known
numbers, the start epoch, lazy rows, resume, and the same targets on every DDP rank."""
import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from nat_tasks.core.errors import NatError
from nat_tasks.core.soft_targets import SoftTargets, merge_updates, self_adaptive_ce

P = torch.tensor([[0.2, 0.5, 0.3], [0.1, 0.1, 0.8]])
INDEX, LABELS = torch.tensor([2, 0]), torch.tensor([1, 2])


def close(tensor, expected):
    return torch.allclose(tensor, torch.tensor(expected), atol=1e-6)


def started(start_epoch=0, epoch=0, **kwargs):
    targets = SoftTargets(3, start_epoch=start_epoch, **kwargs)
    targets.set_epoch(epoch)
    return targets


def test_before_the_start_epoch_targets_are_one_hot_and_nothing_is_stored():
    targets = started(start_epoch=1, epoch=0)
    assert targets(INDEX, LABELS, P).tolist() == [[0, 1, 0], [0, 0, 1]]
    assert targets.targets.shape == (0, 3)


def test_the_update_rule_on_known_numbers():
    """t <- 0.9 t + 0.1 p, from one-hot; the returned targets are the updated ones (the loss uses them)."""
    targets = started(start_epoch=1, epoch=1)
    new = targets(INDEX, LABELS, P)
    assert close(new, [[0.02, 0.95, 0.03], [0.01, 0.01, 0.98]])
    stored = targets.targets
    assert stored.shape == (3, 3)  # grown to the largest index seen
    assert stored[2].tolist() == pytest.approx([0.02, 0.95, 0.03]) and stored[0].tolist() == pytest.approx([0.01, 0.01, 0.98])
    assert stored[1].tolist() == [0, 0, 0] and targets.lookup(torch.tensor([1]), torch.tensor([0])).tolist() == [[1, 0, 0]]
    again = targets(torch.tensor([2]), torch.tensor([1]), torch.tensor([[1.0, 0.0, 0.0]]))
    assert close(again, [[0.118, 0.855, 0.027]])  # 0.9 * [.02 .95 .03] + 0.1 * [1 0 0]
    assert targets.targets[2].tolist() == pytest.approx([0.118, 0.855, 0.027])


def test_momentum_is_a_setting():
    targets = started(momentum=0.5)
    assert close(targets(torch.tensor([0]), torch.tensor([1]), P[:1]), [[0.1, 0.75, 0.15]])


def test_self_adaptive_ce_on_known_numbers_and_plain_ce_for_one_hot():
    logits = torch.tensor([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]])
    t = torch.tensor([[0.02, 0.95, 0.03], [0.01, 0.01, 0.98]])
    w = torch.tensor([0.95, 0.98]) * 2 / 1.93  # max_j t_ij rescaled to mean 1
    log_p = logits - torch.log(torch.exp(logits).sum(dim=1, keepdim=True))
    expected = (w * -(t * log_p).sum(dim=1)).mean()
    assert self_adaptive_ce(logits, t).item() == pytest.approx(expected.item(), abs=1e-6)
    one_hot = F.one_hot(LABELS, 3).float()
    assert self_adaptive_ce(logits, one_hot).item() == pytest.approx(F.cross_entropy(logits, LABELS).item(), abs=1e-6)


def test_an_unknown_epoch_and_bad_settings_are_one_line():
    with pytest.raises(NatError, match="need the current epoch") as err:
        SoftTargets(3)(INDEX, LABELS, P)
    assert "\n" not in str(err.value)
    targets = SoftTargets(3, start_epoch=5, epoch_source=lambda: 5)
    assert targets.started and not SoftTargets(3, start_epoch=5, epoch_source=lambda: 4).started
    for kwargs, message in ((dict(momentum=1.0), "momentum=1.0"), (dict(start_epoch=-1), "start_epoch=-1"),
                            (dict(start_epoch=2.5), "start_epoch=2.5")):
        with pytest.raises(NatError, match=message):
            SoftTargets(3, **kwargs)


def test_resume_restores_the_targets_bit_for_bit():
    targets = started()
    targets(torch.tensor([4, 1]), torch.tensor([0, 2]), torch.rand(2, 3).softmax(dim=1))
    fresh = SoftTargets(3)  # no rows yet: loading resizes
    fresh.load_state_dict(targets.state_dict())
    assert torch.equal(fresh.targets, targets.targets) and fresh.targets.shape == (5, 3)
    with pytest.raises(RuntimeError, match="size mismatch"):  # a different class count is not resized away
        SoftTargets(4).load_state_dict(targets.state_dict())


def test_merge_keeps_the_last_update_of_an_index():
    index, rows = merge_updates(torch.tensor([3, 1, 3, 2]), torch.tensor([[1.0], [2.0], [3.0], [4.0]]))
    assert index.tolist() == [1, 2, 3] and rows.tolist() == [[2.0], [4.0], [3.0]]


def _rank_updates(rank, world, init_file, out):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        targets = started()
        # rank 0 updates examples 0 and 2, rank 1 examples 2 and 4 (2 on both: the padded last batch)
        index = torch.tensor([[0, 2], [2, 4, 5]][rank])
        probabilities = torch.full((len(index), 3), 0.1 + rank * 0.4)
        targets(index, torch.zeros(len(index), dtype=torch.long), probabilities)
        torch.save(targets.targets, os.path.join(out, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def test_two_gloo_ranks_hold_identical_targets(tmp_path):
    mp.spawn(_rank_updates, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2)
    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    assert torch.equal(rank0, rank1) and rank0.shape == (6, 3)
    assert rank0[0].tolist() == pytest.approx([0.91, 0.01, 0.01])  # rank 0's update, label 0
    assert rank0[2].tolist() == pytest.approx([0.95, 0.05, 0.05])  # rank 1's (the highest rank wins)
    assert rank0[1].tolist() == [0, 0, 0] and rank0[3].tolist() == [0, 0, 0]  # never updated
