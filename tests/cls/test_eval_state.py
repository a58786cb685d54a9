"""The evaluation state (eval_state.py) with evaluate(): an interrupted evaluation resumes to the
numbers of a straight one without redoing a batch, and a state continues only with its settings."""
import json

import pytest

from nat_tasks.cls.evaluation.attacks import ThreatModel
from nat_tasks.cls.evaluation.eval_state import EvalState, open_state
from nat_tasks.runtime.seeding import batch_seed
from nat_tasks.cls.evaluation.evaluation import build_attacks, evaluate, evaluation_settings
from nat_tasks.core.attack_registry import Attack
from nat_tasks.core.errors import NatError

THREAT = ThreatModel(eps=0.08, alpha=0.02)
NAMES = ["clean", "fgsm", "pgd5"]
QUIET = dict(progress=False, log=lambda *_: None)


class Counting(Attack):
    """Runs ``attack`` and counts its batches; raises ``KeyboardInterrupt`` (a kill) on batch ``stop_at``."""

    def __init__(self, attack, stop_at=None):
        self.attack, self.stop_at, self.calls = attack, stop_at, 0
        self.name, self.column = attack.name, attack.column

    def __call__(self, model, x, y):
        if self.calls == self.stop_at:
            raise KeyboardInterrupt
        self.calls += 1
        return self.attack(model, x, y)

    def describe(self):
        return self.attack.describe()


def counted(stop_at=None):
    """The attacks of NAMES, each wrapped in ``Counting``; pgd5 stops at ``stop_at``."""
    return [Counting(a, stop_at if a.name == "pgd5" else None) for a in build_attacks(NAMES, THREAT)]


def settings(attacks, n=40, **changes):
    return dict(evaluation_settings(attacks, THREAT, n_examples=n, batch_size=8, seed=3, checkpoint="model.pth"),
                **changes)


def test_batch_seeds_depend_on_the_run_seed_and_the_batch_only():
    assert batch_seed(7, 0) == 7  # one batch: what torch.manual_seed(seed) always drew
    seeds = {batch_seed(s, b) for s in range(3) for b in range(100)}
    assert len(seeds) == 300 and all(0 <= s < 2 ** 63 for s in seeds)


def test_an_interrupted_evaluation_resumes_to_the_numbers_of_a_straight_one(toy_model, test_batch, tmp_path):
    x, y = test_batch[0][:40], test_batch[1][:40]
    straight = evaluate(toy_model, x, y, NAMES, THREAT, batch_size=8, seed=3, **QUIET)
    assert 0 < sum(straight[2]["flags"]) < sum(straight[0]["flags"])  # pgd5 breaks some, not all
    path = str(tmp_path / "state.json")
    killed = counted(stop_at=2)  # pgd5 dies on its third batch, after clean and fgsm finished
    with pytest.raises(KeyboardInterrupt):
        evaluate(toy_model, x, y, killed, THREAT, batch_size=8, seed=3,
                 state=open_state(path, settings(killed), resume=False), **QUIET)
    saved = json.loads(open(path).read())
    assert saved["flags"]["pgd5"].count(None) == 24 and saved["flags"]["fgsm"].count(None) == 0
    assert saved["clean"] == straight[0]["flags"]
    assert saved["robust_all"][:16] == [c and f and p for c, f, p in zip(*(r["flags"][:16] for r in straight))]
    assert saved["robust_all"][16:] == [None] * 24  # pgd5 has not seen them

    resumed_attacks = counted()
    state = open_state(path, settings(resumed_attacks), resume=True)
    resumed = evaluate(toy_model, x, y, resumed_attacks, THREAT, batch_size=8, seed=3, state=state, **QUIET)
    assert [a.calls for a in resumed_attacks] == [0, 0, 3]  # only pgd5's last three batches ran again
    for got, want in zip(resumed, straight):
        assert (got["attack"], got["correct"], got["flags"], got["settings"]) == \
               (want["attack"], want["correct"], want["flags"], want["settings"])
    final = json.loads(open(path).read())
    assert final["robust_all"] == [all(f) for f in zip(*(r["flags"] for r in straight))]


def test_a_state_continues_only_with_its_own_settings(tmp_path):
    attacks = build_attacks(NAMES, THREAT)
    path = str(tmp_path / "state.json")
    state = open_state(path, settings(attacks), resume=False)
    state.record("clean", 0, [True] * 8, [True] * 8, 0.1)
    state.save()
    with pytest.raises(NatError, match=r"holds an unfinished evaluation: add --resume to continue it, or delete it"):
        open_state(path, settings(attacks), resume=False)
    with pytest.raises(NatError, match=r"made with other settings \(seed: 3 -> 4\); run with those"):
        open_state(path, settings(attacks, seed=4), resume=True)
    with pytest.raises(NatError, match=r"other settings \(attacks\.pgd5: 'PGD-5 .*' -> None; attacks\.pgd6: None -> "):
        open_state(path, settings(build_attacks(["clean", "fgsm", "pgd6"], THREAT)), resume=True)
    with pytest.raises(NatError, match=r"other settings \(n_examples: 40 -> 48\)"):
        open_state(path, settings(attacks, n=48), resume=True)
    assert open_state(path, settings(attacks), resume=True).clean[:9] == [True] * 8 + [None]

    for name in NAMES:  # a finished evaluation is started afresh without --resume
        for b in range(5):
            state.record(name, b, [True] * 8, [False] * 8, 0.1)
    state.save()
    assert open_state(path, settings(attacks), resume=False).clean == [None] * 40
    with open(path, "w") as f:
        f.write("{torn")
    with pytest.raises(NatError, match=r"cannot read the evaluation state .*: delete it"):
        open_state(path, settings(attacks), resume=True)
    assert open_state(str(tmp_path / "none.json"), settings(attacks), resume=True).todo("pgd5")[0] == (0, 0, 8)


def test_a_state_knows_its_batches_and_what_is_left():
    state = EvalState(settings(build_attacks(NAMES, THREAT), n=20))
    assert state.batches() == [(0, 0, 8), (1, 8, 16), (2, 16, 20)]
    state.record("pgd5", 1, [True] * 8, [True, False] * 4, 2.0)
    assert state.todo("pgd5") == [(0, 0, 8), (2, 16, 20)] and len(state.todo("clean")) == 3
    assert state.seconds["pgd5"] == 2.0 and not state.complete()
