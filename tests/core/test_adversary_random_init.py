"""A randomly initialised adversary (core/adversary.py, ``checkpoint='random:<seed>'``; Table 8's
"random init" state): no file, the task's untrained model under the seed, the caller's random
state untouched; a task without untrained members and a malformed seed are one line."""
import pytest
import torch

from nat_tasks.core.adversary import build_adversary
from nat_tasks.core.errors import NatError
from nat_tasks.core.nasty_config import parse_nasty


def spec(checkpoint):
    return parse_nasty(dict(adversary=dict(arch="lin", checkpoint=checkpoint)), member_keys=("arch",))


def untrained(member):
    return torch.nn.Linear(3, 2)


def refuse(member):
    raise AssertionError("a random member must not load a checkpoint")


def test_the_seed_alone_makes_the_weights_and_the_callers_random_state_is_kept():
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    a = build_adversary(spec("random:7"), refuse, build_untrained=untrained)  # no file exists
    assert torch.equal(torch.rand(3), expected_next)
    b = build_adversary(spec("random:7"), refuse, build_untrained=untrained)
    c = build_adversary(spec("random:8"), refuse, build_untrained=untrained)
    torch.manual_seed(7)
    by_hand = torch.nn.Linear(3, 2)
    assert torch.equal(a.models[0].weight, by_hand.weight) and torch.equal(b.models[0].weight, by_hand.weight)
    assert not torch.equal(c.models[0].weight, by_hand.weight)
    assert not a.models[0].weight.requires_grad  # frozen like any adversary


def test_a_mixed_ensemble_loads_files_and_initialises_the_random_member(tmp_path):
    path = tmp_path / "lin.pth"
    path.write_bytes(b"")  # exists: only the callback reads it
    section = dict(adversary=[dict(arch="lin", checkpoint=str(path)), dict(arch="lin", checkpoint="random:0")])
    built = []
    adversary = build_adversary(parse_nasty(section, member_keys=("arch",)),
                                lambda m: built.append(m["checkpoint"]) or torch.nn.Linear(3, 2),
                                build_untrained=untrained)
    assert built == [str(path)] and len(adversary.models) == 2


def test_malformed_seeds_and_tasks_without_untrained_members_are_one_line():
    with pytest.raises(NatError, match="'random:<integer seed>'"):
        spec("random:abc")
    with pytest.raises(NatError, match="a randomly initialised adversary is not available here"):
        build_adversary(spec("random:0"), refuse)
