"""The classification attacks, one class per kind, in one registry: a new attack is one class here.

An attack is built from its name (``REGISTRY.build(name, threat=..., ...)``: the name carries its
settings, the run provides the rest), crafts with ``attack(model, x, y)`` on [0, 1] images and
says what it did with ``describe()``, printed and saved next to its result. ``evaluation.py``,
the checklist and ``tools/eval_cls.py`` take names, help text and descriptions from here.

Names (``REGISTRY.syntax()``):
- ``clean``; ``fgsm``; ``pgd<k>`` (PGD-k on the CE, random start) and ``pgd<k>x<r>`` (r restarts,
  per example the best); ``cw`` / ``cw<k>`` (PGD on the CW margin loss, the CW-inf of AT papers,
  20 steps by default);
- ``aa`` (AutoAttack standard through pyautoattack); ``apgd-ce-<k>`` / ``apgd-dlr-<k>`` (one APGD
  attack with k iterations, 1 restart); ``square`` / ``square<q>`` (Square, 5000 or q queries);
- ``nat-adaptive`` / ``nat-adaptive<k>`` (PGD-k, default 10 as the paper's K, on eq. 14's loss
  ``CE - w tau^2 KL(p_t || p_a)`` with the gradient through both models; needs the NAT adversary
  and the config's ``model.nasty`` settings);
- ``transfer-<attack>`` for fgsm, pgd<k>[x<r>] and cw[<k>]: crafted on a surrogate model
  (black-box transfer), counted on the evaluated one.

Sparse (l0) attacks, under a ``SparseThreat(k)`` (k pixel locations, all channels of a location
counting once; ``nat_tasks.core.sparse``):
- ``spgd[<n>]`` / ``spgd-proj[<n>]``: sPGD with the unprojected / projected magnitude gradient, n
  iterations (default 10000, the paper's evaluation), patience 3;
- ``sparse-rs[<q>]``: Sparse-RS, q queries (default 10000), p_init 0.8, CE loss (CIFAR's);
- ``saa[<n>][q<q>]``: sparse-AutoAttack, the cascade of the three with n sPGD iterations and q
  queries (default 10000 each), e.g. ``saa300q1000``.
``clean`` runs under either threat model; the others under their own only.
"""
from dataclasses import dataclass

from nat_tasks.core.attack_registry import Attack, AttackRegistry
from nat_tasks.core.attacks import NatAdaptiveLoss, fgsm, pgd
from nat_tasks.core.autoattack import autoattack, autoattack_settings
from nat_tasks.core.errors import NatError, check_eps
from nat_tasks.core.sparse import (EVAL_PATIENCE, SAA_QUERIES, SAA_STEPS, sparse_autoattack, sparse_rs,
                                   spgd)

REGISTRY = AttackRegistry("classification")


@dataclass(frozen=True)
class ThreatModel:
    """Budget and step size in pixel units of [0, 1] images."""
    eps: float
    alpha: float
    norm: str = "Linf"

    def __post_init__(self):
        check_eps(self.eps)
        if not 0.0 < self.alpha <= 1.0:
            raise NatError(f"alpha={self.alpha} is outside (0, 1] (pixel units)")

    def describe(self):
        return f"{self.norm} eps={self.eps:.4g} ({self.eps * 255:.3g}/255)"


@dataclass(frozen=True)
class SparseThreat:
    """The l0 threat model: at most ``k`` pixel locations changed (all channels of a location count
    once), any amount within the [0, 1] box."""
    k: int
    norm: str = "L0"

    def __post_init__(self):
        if isinstance(self.k, bool) or not isinstance(self.k, int) or self.k < 1:
            raise NatError(f"k={self.k} must be a whole number of pixels, at least 1")

    def describe(self):
        return f"L0 k={self.k} pixels"


def threat_kind(attack_class):
    """``'L0'`` for the sparse attacks, ``'Linf'`` for the others, ``None`` for ``clean`` (either)."""
    return getattr(attack_class, "threat_kind", "Linf")


def check_threat(name, threat):
    """One clear line when an attack does not belong to the run's threat model."""
    kind, wanted = threat_kind(REGISTRY.match(name)[0]), getattr(threat, "norm", "Linf")
    wanted = "L0" if wanted == "L0" else "Linf"
    if kind is not None and kind != wanted:
        same = [syntax for syntax, cls in zip(REGISTRY.syntax().split(", "), REGISTRY.kinds())
                if threat_kind(cls) in (None, wanted)]
        raise NatError(f"attack {name!r} is an {kind} attack, the threat model is {wanted} "
                       f"({threat.describe()}); under it use: {', '.join(same)}")


def _at_least_one(**counts):
    for what, count in counts.items():
        if count < 1:
            raise ValueError(f"{what} must be at least 1")


@REGISTRY.register("clean")
class Clean(Attack):
    column = "clean"
    threat_kind = None  # any threat model

    def __call__(self, model, x, y):
        return x

    def describe(self):
        return "no attack"


@REGISTRY.register("fgsm")
class FGSM(Attack):
    column = "FGSM"

    def __init__(self, *, threat):
        self.threat = threat

    def __call__(self, model, x, y):
        return fgsm(model, x, y, eps=self.threat.eps)

    def describe(self):
        return f"FGSM, {self.threat.describe()}"


@REGISTRY.register(r"pgd(?P<steps>\d+)(?:x(?P<restarts>\d+))?", "pgd<k>[x<r>]")
class PGD(Attack):
    """Linf PGD-k with random start on the CE; with r restarts, per example the best."""
    loss, loss_name = "ce", "CE"

    def __init__(self, steps, restarts=1, *, threat):
        _at_least_one(steps=steps, restarts=restarts)
        self.steps, self.restarts, self.threat = steps, restarts, threat
        self.column = f"PGD-{steps}" + (f" x{restarts}" if restarts > 1 else "")

    def __call__(self, model, x, y):
        return pgd(model, x, y, eps=self.threat.eps, alpha=self.threat.alpha, steps=self.steps,
                   norm=self.threat.norm, loss=self.loss, restarts=self.restarts)

    def describe(self):
        restarts = f"{self.restarts} restart{'s' if self.restarts > 1 else ''}"
        return (f"PGD-{self.steps} ({self.loss_name}), {self.threat.describe()}, alpha={self.threat.alpha:.4g}, "
                f"random start, {restarts}")


@REGISTRY.register(r"cw(?P<steps>\d+)?", "cw[<k>]")
class CW(PGD):
    """CW-inf as in AT papers: PGD on the CW margin loss, 20 steps by default."""
    loss, loss_name = "cw", "CW margin"

    def __init__(self, steps=20, *, threat):
        super().__init__(steps, threat=threat)
        self.column = f"CW-{steps}"


@REGISTRY.register(r"nat-adaptive(?P<steps>\d+)?", "nat-adaptive[<k>]")
class NatAdaptive(Attack):
    """Eq. 14: PGD-k on ``CE - w tau^2 KL(p_t || p_a)`` through target and adversary, with the
    weight, tau and tau^2 switch of the config's ``model.nasty`` (``nasty``, a ``NastySpec``)."""

    def __init__(self, steps=10, *, threat, adversary=None, nasty=None):
        _at_least_one(steps=steps)
        if adversary is None or nasty is None:
            raise NatError("nat-adaptive needs the NAT adversary: evaluate with a NAT config (model.nasty)")
        self.steps, self.threat, self.nasty = steps, threat, nasty
        self.loss = NatAdaptiveLoss(adversary, nasty.weight, nasty.tau, nasty.scale_by_tau2)
        self.column = f"NAT-adaptive-{steps}"

    def __call__(self, model, x, y):
        return pgd(model, x, y, eps=self.threat.eps, alpha=self.threat.alpha, steps=self.steps,
                   norm=self.threat.norm, loss=self.loss)

    def describe(self):
        s = self.nasty
        return (f"PGD-{self.steps} on CE - w tau^2 KL(p_t||p_a) (eq. 14; w={s.weight}, tau={s.tau}, "
                f"tau^2 {'on' if s.scale_by_tau2 else 'off'}; gradient through target and "
                f"adversary), {self.threat.describe()}, alpha={self.threat.alpha:.4g}, random start")


class _PyAutoAttack(Attack):
    """AutoAttack's own code (pyautoattack): the standard suite, or the one attack ``attacks``."""
    attacks = ()  # (): the standard suite
    steps = queries = None  # APGD iterations, Square queries (None: AutoAttack's)

    def __init__(self, *, threat, seed=0, device=None, num_classes=None):
        self.threat, self.seed, self.device, self.num_classes = threat, seed, device, num_classes

    def __call__(self, model, x, y):
        x_adv, _ = autoattack(model, x, y, eps=self.threat.eps, norm=self.threat.norm,
                              version="custom" if self.attacks else "standard",
                              attacks=list(self.attacks) or None, apgd_steps=self.steps,
                              square_queries=self.queries, num_classes=self.num_classes,
                              batch_size=len(x), seed=self.seed, device=self.device)
        return x_adv

    def describe(self):
        if not self.attacks:
            return f"{autoattack_settings('standard')}, {self.threat.describe()}"
        return (f"{autoattack_settings('custom', list(self.attacks), self.steps, self.queries)}, "
                f"{self.threat.describe()}")


@REGISTRY.register("aa")
class AutoAttack(_PyAutoAttack):
    column = "AutoAttack"


@REGISTRY.register(r"apgd-ce-(?P<steps>\d+)", "apgd-ce-<k>")
class APGDCE(_PyAutoAttack):
    """APGD on the CE with k iterations (its step-size schedule rescaled), 1 restart."""
    attacks = ("apgd-ce",)

    def __init__(self, steps, *, threat, seed=0, device=None, num_classes=None):
        _at_least_one(steps=steps)
        super().__init__(threat=threat, seed=seed, device=device, num_classes=num_classes)
        self.steps = steps
        self.column = f"{self.attacks[0]}-{steps}"


@REGISTRY.register(r"apgd-dlr-(?P<steps>\d+)", "apgd-dlr-<k>")
class APGDDLR(APGDCE):
    """APGD on the DLR loss with k iterations, 1 restart."""
    attacks = ("apgd-dlr",)


@REGISTRY.register(r"square(?P<queries>\d+)?", "square[<q>]")
class Square(_PyAutoAttack):
    """Square (black box): AutoAttack's 5000 queries, or q."""
    attacks = ("square",)

    def __init__(self, queries=None, *, threat, seed=0, device=None, num_classes=None):
        if queries is not None:
            _at_least_one(queries=queries)
        super().__init__(threat=threat, seed=seed, device=device, num_classes=num_classes)
        self.queries = queries
        self.column = "square" if queries is None else f"square{queries}"


@REGISTRY.register(r"transfer-(?P<base>.+)", "transfer-<fgsm|pgd<k>[x<r>]|cw[<k>]>")
class Transfer(Attack):
    """``transfer-<attack>``: ``attack`` crafted on the surrogate model, counted on the evaluated
    one (black-box transfer). ``source``: the surrogate's name in ``describe()``. ``run``: what
    the base attack takes from the run (its threat model)."""
    TRANSFERABLE = (FGSM, PGD, CW)

    def __init__(self, base, *, surrogate, source="the surrogate", **run):
        if REGISTRY.match(base)[0] not in self.TRANSFERABLE:
            raise NatError(f"unknown classification attack 'transfer-{base}': only fgsm, pgd<k>[x<r>] "
                           "and cw[<k>] transfer")
        self.attack, self.surrogate, self.source = REGISTRY.build(base, **run), surrogate, source
        self.column = f"transfer {self.attack.column}"

    def __call__(self, model, x, y):
        return self.attack(self.surrogate, x, y)

    def describe(self):
        return f"{self.attack.describe()}, crafted on {self.source} (transfer)"


class _Sparse(Attack):
    """An l0 attack; ``threat`` is a ``SparseThreat``."""
    threat_kind = "L0"

    def _check(self, threat):
        if getattr(threat, "norm", None) != "L0":
            raise NatError(f"{type(self).__name__} needs an l0 threat model (SparseThreat(k))")


@REGISTRY.register(r"spgd(?P<steps>\d+)?", "spgd[<n>]")
class SPGD(_Sparse):
    """sPGD, unprojected magnitude gradient, n iterations (10000: the paper's evaluation), patience 3."""
    projected, variant = False, "unprojected"

    def __init__(self, steps=SAA_STEPS, *, threat, progress=False):
        _at_least_one(steps=steps)
        self._check(threat)
        self.steps, self.threat, self.progress = steps, threat, progress
        self.column = f"sPGD-{'proj' if self.projected else 'unproj'}-{steps}"

    def __call__(self, model, x, y):
        return spgd(model, x, y, k=self.threat.k, steps=self.steps, projected=self.projected,
                    patience=EVAL_PATIENCE, progress=self.progress)

    def describe(self):
        return (f"sPGD ({self.variant}), {self.steps} it, patience {EVAL_PATIENCE}, alpha=0.25, beta=0.25, "
                f"CE loss, early stop, {self.threat.describe()}")


@REGISTRY.register(r"spgd-proj(?P<steps>\d+)?", "spgd-proj[<n>]")
class SPGDProjected(SPGD):
    """sPGD, projected magnitude gradient."""
    projected, variant = True, "projected"


@REGISTRY.register(r"sparse-rs(?P<queries>\d+)?", "sparse-rs[<q>]")
class SparseRS(_Sparse):
    """Sparse-RS (black box), q queries (default 10000), p_init 0.8, CE loss (the CIFAR setting)."""
    p_init, loss, default_queries, label = 0.8, "ce", SAA_QUERIES, "Sparse-RS"

    def __init__(self, queries=None, *, threat, progress=False):
        queries = self.default_queries if queries is None else queries
        _at_least_one(queries=queries)
        self._check(threat)
        self.queries, self.threat, self.progress = queries, threat, progress
        self.column = f"{self.label}-{queries}"

    def __call__(self, model, x, y):
        return sparse_rs(model, x, y, k=self.threat.k, queries=self.queries, p_init=self.p_init, loss=self.loss,
                         progress=self.progress)

    def describe(self):
        return (f"Sparse-RS, {self.queries} q, p_init={self.p_init}, {self.loss.upper()} loss, "
                f"{self.threat.describe()}")


@REGISTRY.register(r"saa(?P<steps>\d+)?(?:q(?P<queries>\d+))?", "saa[<n>][q<q>]")
class SparseAutoAttack(_Sparse):
    """sparse-AutoAttack: sPGD-unprojected -> sPGD-projected (n iterations each, patience 3) ->
    Sparse-RS (q queries), each on the survivors; the paper's 10000 / 10000 by default."""
    label = "sAA"

    rs = SparseRS  # the last stage's settings (p_init, loss, default queries)

    def __init__(self, steps=SAA_STEPS, queries=None, *, threat, progress=False):
        queries = self.rs.default_queries if queries is None else queries
        _at_least_one(steps=steps, queries=queries)
        self._check(threat)
        self.steps, self.queries, self.threat, self.progress = steps, queries, threat, progress
        default = (steps, queries) == (SAA_STEPS, self.rs.default_queries)
        self.column = self.label if default else f"{self.label}-{steps}/{queries}"
        self.last_stages = None  # the last batch's per-stage counts and times

    def __call__(self, model, x, y):
        x_adv, info = sparse_autoattack(model, x, y, k=self.threat.k, steps=self.steps, queries=self.queries,
                                        p_init=self.rs.p_init, rs_loss=self.rs.loss, progress=self.progress,
                                        return_info=True)
        self.last_stages = info["stages"]
        return x_adv

    def describe(self):
        return (f"sparse-AutoAttack: sPGD unprojected ({self.steps} it) -> sPGD projected ({self.steps} it), "
                f"CE, patience {EVAL_PATIENCE} -> {self.rs.label} ({self.queries} q, p_init={self.rs.p_init}, "
                f"{self.rs.loss.upper()}), each on the survivors, {self.threat.describe()}")


@REGISTRY.register(r"sparse-rs-imagenet(?P<queries>\d+)?", "sparse-rs-imagenet[<q>]")
class SparseRSImageNet(SparseRS):
    """Sparse-RS in sAA's ImageNet-100 setting: q queries (default 3000), p_init 0.3, margin loss."""
    p_init, loss, default_queries, label = 0.3, "margin", 3000, "Sparse-RS-ImageNet"


@REGISTRY.register(r"saa-imagenet(?P<steps>\d+)?(?:q(?P<queries>\d+))?", "saa-imagenet[<n>][q<q>]")
class SparseAutoAttackImageNet(SparseAutoAttack):
    """sparse-AutoAttack with the ImageNet-100 Sparse-RS stage (3000 queries, p_init 0.3, margin)."""
    rs, label = SparseRSImageNet, "sAA-ImageNet"
