"""The classification attacks (attacks.py): names carry settings, each kind says what it did in
the exact words of earlier releases, the registry is the one list of names."""
import inspect

import pytest
import torch

from nat_tasks.cls.models.architectures import build_classifier
from nat_tasks.cls.evaluation.attacks import REGISTRY, ThreatModel
from nat_tasks.core.adversary import FrozenAdversary
from nat_tasks.core.errors import NatError
from nat_tasks.core.nasty_config import NastySpec

THREAT = ThreatModel(eps=8 / 255, alpha=2 / 255)
BUDGET = "Linf eps=0.03137 (8/255)"
PGD = f"{BUDGET}, alpha=0.007843, random start"
NAMES = ["clean", "fgsm", "pgd20", "pgd20x5", "cw", "cw50", "aa", "apgd-ce-50", "apgd-dlr-5", "square",
         "square100", "nat-adaptive", "nat-adaptive3", "transfer-fgsm", "transfer-pgd5x2", "transfer-cw"]


def build(name, **run):
    """``name`` built with everything a run can provide; ``run`` overrides."""
    run = dict(dict(threat=THREAT, surrogate=build_classifier("small_cnn", 10), nasty=NastySpec(),
                    adversary=FrozenAdversary(build_classifier("small_cnn", 10))), **run)
    return REGISTRY.build(name, **run)


@pytest.mark.parametrize("name,description", [
    ("clean", "no attack"),
    ("fgsm", f"FGSM, {BUDGET}"),
    ("pgd20", f"PGD-20 (CE), {PGD}, 1 restart"),
    ("PGD20x5 ", f"PGD-20 (CE), {PGD}, 5 restarts"),
    ("cw", f"PGD-20 (CW margin), {PGD}, 1 restart"),
    ("cw50", f"PGD-50 (CW margin), {PGD}, 1 restart"),
    ("aa", "AutoAttack standard: APGD-CE (100 it), APGD-T (9 targets, 100 it), FAB-T (9 targets), "
           f"Square (5000 q), {BUDGET}"),
    ("apgd-ce-50", f"AutoAttack custom: apgd-ce, 50 it, 1 restart, {BUDGET}"),
    ("apgd-dlr-5", f"AutoAttack custom: apgd-dlr, 5 it, 1 restart, {BUDGET}"),
    ("square", f"AutoAttack custom: square, 1 restart, {BUDGET}"),
    ("square100", f"AutoAttack custom: square, 100 q, 1 restart, {BUDGET}"),
    ("nat-adaptive", "PGD-10 on CE - w tau^2 KL(p_t||p_a) (eq. 14; w=0.006, tau=4.0, tau^2 on; gradient "
                     f"through target and adversary), {PGD}"),
    ("transfer-fgsm", f"FGSM, {BUDGET}, crafted on the surrogate (transfer)"),
    ("transfer-pgd5x2", f"PGD-5 (CE), {PGD}, 2 restarts, crafted on the surrogate (transfer)"),
    ("transfer-cw", f"PGD-20 (CW margin), {PGD}, 1 restart, crafted on the surrogate (transfer)"),
])
def test_names_carry_settings_and_descriptions_are_unchanged(name, description):
    attack = build(name)
    assert attack.name == name.strip().lower() and attack.describe() == description


def test_nat_adaptive_describes_the_configs_nasty_settings():
    attack = build("nat-adaptive7", nasty=NastySpec(weight=0.5, tau=2.0, scale_by_tau2=False))
    assert "PGD-7 on CE" in attack.describe() and "(eq. 14; w=0.5, tau=2.0, tau^2 off;" in attack.describe()
    assert (attack.loss.nasty.weight, attack.loss.nasty.tau, attack.loss.nasty.scale_by_tau2) == (0.5, 2.0, False)


def test_the_help_text_lists_every_attack():
    syntax = REGISTRY.syntax()
    for name in ("clean", "fgsm", "pgd<k>[x<r>]", "cw[<k>]", "aa", "apgd-ce-<k>", "apgd-dlr-<k>", "square[<q>]",
                 "nat-adaptive[<k>]", "transfer-<fgsm|pgd<k>[x<r>]|cw[<k>]>"):
        assert name in syntax.split(", ")
    assert len(REGISTRY.kinds()) == len(syntax.split(", "))
    assert all(build(name) for name in NAMES)  # every example name builds


@pytest.mark.parametrize("name,message", [
    ("pgd", "unknown classification attack 'pgd'; expected one of: clean, fgsm,"),
    ("apgd-ce", "unknown classification attack 'apgd-ce'"),
    ("deepfool", "unknown classification attack 'deepfool'"),
    ("transfer-aa", "unknown classification attack 'transfer-aa'"),  # only fgsm, pgd and cw transfer
    ("pgd0", "attack 'pgd0': steps must be at least 1"),
    ("pgd10x0", "attack 'pgd10x0': restarts must be at least 1"),
    ("square0", "attack 'square0': queries must be at least 1"),
    ("apgd-ce-0", "attack 'apgd-ce-0': steps must be at least 1"),
])
def test_bad_names_are_one_line(name, message):
    with pytest.raises(NatError) as err:
        build(name)
    assert str(err.value).startswith(message)


def test_what_a_run_must_provide():
    with pytest.raises(NatError, match="attack 'transfer-pgd5' needs surrogate"):
        REGISTRY.build("transfer-pgd5", threat=THREAT)
    with pytest.raises(NatError, match="attack 'pgd5' needs threat"):
        REGISTRY.build("pgd5")
    with pytest.raises(NatError, match="nat-adaptive needs the NAT adversary: evaluate with a NAT config"):
        REGISTRY.build("nat-adaptive", threat=THREAT)
    for name in NAMES:  # what eval_cls.py asks of the config and the command line
        parameters = inspect.signature(REGISTRY.match(name)[0]).parameters
        assert ("adversary" in parameters) == name.startswith("nat-adaptive")
        assert ("surrogate" in parameters) == name.startswith("transfer-")


def test_transfer_crafts_on_the_surrogate():
    class Recorder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear, self.calls = torch.nn.Linear(12, 3), 0

        def forward(self, x):
            self.calls += 1
            return self.linear(x.flatten(1))

    target, surrogate = Recorder(), Recorder()
    attack = REGISTRY.build("transfer-pgd2", threat=THREAT, surrogate=surrogate)
    x_adv = attack(target, torch.rand(2, 3, 2, 2), torch.tensor([0, 1]))
    assert surrogate.calls > 0 and target.calls == 0 and x_adv.shape == (2, 3, 2, 2)


def test_threat_model_is_checked():
    with pytest.raises(NatError, match="outside"):
        ThreatModel(eps=1.2, alpha=0.1)
    with pytest.raises(NatError, match=r"alpha=0 is outside \(0, 1\]"):
        ThreatModel(eps=0.1, alpha=0)


# ---- the sparse (l0) attacks ----------------------------------------------------------------------
from nat_tasks.cls.evaluation import attacks as cls_attacks  # noqa: E402
from nat_tasks.cls.evaluation.attacks import SparseThreat, check_threat  # noqa: E402

L0 = SparseThreat(k=20)
SPARSE = "patience 3, alpha=0.25, beta=0.25, CE loss, early stop, L0 k=20 pixels"


@pytest.mark.parametrize("name,description,column", [
    ("spgd", f"sPGD (unprojected), 10000 it, {SPARSE}", "sPGD-unproj-10000"),
    ("spgd300", f"sPGD (unprojected), 300 it, {SPARSE}", "sPGD-unproj-300"),
    ("spgd-proj", f"sPGD (projected), 10000 it, {SPARSE}", "sPGD-proj-10000"),
    ("sparse-rs", "Sparse-RS, 10000 q, p_init=0.8, CE loss, L0 k=20 pixels", "Sparse-RS-10000"),
    ("sparse-rs500", "Sparse-RS, 500 q, p_init=0.8, CE loss, L0 k=20 pixels", "Sparse-RS-500"),
    ("saa", "sparse-AutoAttack: sPGD unprojected (10000 it) -> sPGD projected (10000 it), CE, patience 3 -> "
            "Sparse-RS (10000 q, p_init=0.8, CE), each on the survivors, L0 k=20 pixels", "sAA"),
    ("saa300q1000", "sparse-AutoAttack: sPGD unprojected (300 it) -> sPGD projected (300 it), CE, patience 3 -> "
                    "Sparse-RS (1000 q, p_init=0.8, CE), each on the survivors, L0 k=20 pixels", "sAA-300/1000"),
    ("sparse-rs-imagenet", "Sparse-RS, 3000 q, p_init=0.3, MARGIN loss, L0 k=20 pixels", "Sparse-RS-ImageNet-3000"),
    ("saa-imagenet", "sparse-AutoAttack: sPGD unprojected (10000 it) -> sPGD projected (10000 it), CE, patience 3 -> "
                     "Sparse-RS-ImageNet (3000 q, p_init=0.3, MARGIN), each on the survivors, L0 k=20 pixels",
     "sAA-ImageNet"),
])
def test_sparse_names_carry_iterations_and_queries(name, description, column):
    attack = REGISTRY.build(name, threat=L0)
    assert attack.describe() == description and attack.column == column
    for syntax in ("spgd[<n>]", "spgd-proj[<n>]", "sparse-rs[<q>]", "saa[<n>][q<q>]", "sparse-rs-imagenet[<q>]",
                   "saa-imagenet[<n>][q<q>]"):
        assert syntax in REGISTRY.syntax().split(", ")


@pytest.mark.parametrize("name,expected", [
    ("sparse-rs-imagenet", dict(queries=3000, p_init=0.3, loss="margin")),
    ("saa-imagenet7q9", dict(steps=7, queries=9, p_init=0.3, rs_loss="margin")),
    ("saa7q9", dict(steps=7, queries=9, p_init=0.8, rs_loss="ce")),
])
def test_the_sparse_rs_setting_reaches_the_attack(monkeypatch, name, expected):
    calls = []
    fake = lambda model, x, y, **kwargs: calls.append(kwargs) or (x, dict(stages=[]))  # noqa: E731
    monkeypatch.setattr(cls_attacks, "sparse_rs", fake)
    monkeypatch.setattr(cls_attacks, "sparse_autoattack", fake)
    REGISTRY.build(name, threat=L0)(None, torch.zeros(1, 1, 8, 8), torch.zeros(1, dtype=torch.long))
    assert expected.items() <= calls[0].items() and calls[0]["k"] == 20


@pytest.mark.parametrize("name,threat,message", [
    ("pgd20", L0, "attack 'pgd20' is an Linf attack, the threat model is L0 (L0 k=20 pixels); under it use: "
                  "clean, spgd[<n>], spgd-proj[<n>], sparse-rs[<q>], saa[<n>][q<q>], sparse-rs-imagenet[<q>], "
                  "saa-imagenet[<n>][q<q>]"),
    ("aa", L0, "attack 'aa' is an Linf attack"),
    ("saa", THREAT, "attack 'saa' is an L0 attack, the threat model is Linf (Linf eps=0.03137 (8/255)); under it "
                    "use: clean, fgsm,"),
    ("sparse-rs", THREAT, "attack 'sparse-rs' is an L0 attack"),
    ("spgd0", L0, "attack 'spgd0': steps must be at least 1"),
    ("saa5q0", L0, "attack 'saa5q0': queries must be at least 1"),
    ("spgd-l2", L0, "unknown classification attack 'spgd-l2'"),
])
def test_an_attack_of_the_other_threat_model_is_one_line(name, threat, message):
    with pytest.raises(NatError) as err:
        check_threat(name, threat)
        REGISTRY.build(name, threat=threat)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)
    check_threat("clean", L0)
    check_threat("clean", THREAT)


def test_sparse_threat_is_checked():
    for k in (0, -3, 2.5, True):
        with pytest.raises(NatError, match="must be a whole number of pixels, at least 1"):
            SparseThreat(k=k)
    assert SparseThreat(k=200).describe() == "L0 k=200 pixels"
