"""The worst case per query: lowest AP, latest first hit, grouped by budget; the per-batch seeds
of attacked queries (a batch attacked alone gives what one run gives); the budget check."""
import numpy as np
import pytest
import torch
from torch import nn

from nat_tasks.reid.attacks import MetricAttack, build_attack
from nat_tasks.reid.ranking import Ranking
from nat_tasks.reid.robustness import attack_batch, attacked_query_features
from nat_tasks.runtime.seeding import batch_seed
from nat_tasks.reid.worst_case import WorstCase, worst_case_columns, worst_ranking


def ranking(ap, first_hit):
    return Ranking.of_queries(np.arange(len(ap)), ap, first_hit, max_rank=3)


def test_worst_case_per_query():
    clean = ranking([1.0, 0.5, 0.2, 0.9], [1, 2, 1, 1])
    fna = ranking([0.3, 0.6, 0.1, 0.9], [3, 1, 1, 1])
    sma = ranking([0.4, 0.7, 0.15, 0.8], [2, 1, 1, 2])
    worst = worst_ranking([clean, fna, sma])
    np.testing.assert_array_equal(worst.ap, [0.3, 0.5, 0.1, 0.8])
    np.testing.assert_array_equal(worst.first_hit, [3, 2, 1, 2])
    assert worst.rank1_hits.tolist() == [0, 0, 1, 0]  # a hit only if it hits under every version
    assert worst.mAP == pytest.approx(0.425) and worst.cmc.tolist() == [0.25, 0.75, 1.0]
    assert all(worst.mAP <= r.mAP and worst.cmc[0] <= r.cmc[0] for r in (clean, fna, sma))
    with pytest.raises(ValueError, match="same ranked queries"):
        worst_ranking([clean, Ranking.of_queries(np.arange(1, 5), clean.ap, clean.first_hit, 3)])


def test_one_column_per_budget():
    small = [build_attack(k, eps=8 / 255, alpha=1 / 255, steps=16) for k in ("fna", "nat-adaptive")]
    large = [build_attack("fna", eps=10 / 255, alpha=1 / 255, steps=16)]
    columns = worst_case_columns([small[0], large[0], small[1]])
    assert columns == [WorstCase(small), WorstCase(large)]
    assert [c.describe() for c in columns] == ["Worst case 8/255-16", "Worst case 10/255-16"]


@pytest.fixture(scope="module")
def queries():
    """A random conv net and three query batches; batches 0 and 1 hold the same images."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()).eval()
    net.embed = net.forward
    x = torch.rand(2, 3, 8, 6)
    images = torch.cat([x, x, torch.rand(2, 3, 8, 6)])
    pids = torch.tensor([1, 2, 1, 2, 3, 3])
    loader = [{"img": images[i:i + 2]} for i in range(0, 6, 2)]
    return net, loader, net(images).detach(), pids


def test_batches_are_seeded_by_seed_and_index(queries):
    net, loader, clean, pids = queries
    sma = build_attack("sma", eps=8 / 255, alpha=2 / 255, steps=2)  # random start
    one_run = attacked_query_features(net, loader, sma, clean, pids, "cpu", seed=5)
    torch.manual_seed(123)  # other draws and another attack before it change nothing
    attacked_query_features(net, loader, build_attack("fna", eps=8 / 255, alpha=2 / 255, steps=2),
                            clean, pids, "cpu", seed=5)
    assert torch.equal(attacked_query_features(net, loader, sma, clean, pids, "cpu", seed=5), one_run)
    # batch 2 alone (a resumed run, another process) gives the rows one run gave
    alone = attack_batch(net, sma, loader[2]["img"], torch.arange(4, 6), clean, pids, batch_seed(5, 2))
    assert torch.equal(alone, one_run[4:])
    assert not torch.equal(one_run[:2], one_run[2:4])  # same images, another batch: another start
    other_seed = attacked_query_features(net, loader, sma, clean, pids, "cpu", seed=6)
    assert not torch.equal(other_seed, one_run)


class Leaky(MetricAttack):
    kind, column = "leaky", "Leaky"

    def target(self, *args, **kwargs):
        return None

    def __call__(self, embed, x, target):
        return x + 2 * self.eps


def test_an_attack_outside_its_budget_is_never_ranked(queries):
    net, loader, clean, pids = queries
    with pytest.raises(RuntimeError, match="Leaky 8/255-1 left the threat model"):
        attacked_query_features(net, loader, Leaky(eps=8 / 255, alpha=1 / 255, steps=1), clean,
                                pids, "cpu")
