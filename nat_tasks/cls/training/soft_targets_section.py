"""``model.soft_targets`` of a classification config: self-adaptive training's per-example soft
targets (``nat_tasks.core.soft_targets``), offered to the methods that declare ``soft_targets``
(``fast_ls_l0``, ``fast_ls_l0_nat``, ``sat_trades``).

    model = dict(..., method=dict(type='fast_ls_l0', k=20, beta=3.0),
                 soft_targets=dict(momentum=0.9, start_epoch=70))

The targets are a buffer of the model (``method_state.soft_targets``): checkpointed and restored
by ``--resume``. The current epoch is ``run_progress.runner_epoch`` (mmengine's message hub, which
the runner's ``RuntimeInfoHook`` sets at every epoch's start and after a resume): no hook is configured.
"""
from nat_tasks.core.errors import NatError
from nat_tasks.core.soft_targets import DEFAULT_MOMENTUM, SoftTargets

from nat_tasks.cls.training.adversarial_classifier import register_section
from nat_tasks.cls.methods import register_context
from nat_tasks.runtime.run_progress import runner_epoch

KEYS = ("momentum", "start_epoch")


def build_soft_targets(section, data_info):
    unknown = sorted(set(section) - set(KEYS))
    if unknown:
        raise NatError(f"unknown key model.soft_targets.{unknown[0]}; expected some of {list(KEYS)}")
    if "start_epoch" not in section:
        raise NatError("model.soft_targets needs start_epoch (the first epoch that updates the targets; "
                       "self-adaptive training's reference: 70 of 100)")
    targets = SoftTargets(data_info["num_classes"], momentum=section.get("momentum", DEFAULT_MOMENTUM),
                          start_epoch=section["start_epoch"], epoch_source=runner_epoch)
    return dict(soft_targets=targets)


register_context("soft_targets", "model.soft_targets=dict(momentum=0.9, start_epoch=...)")
register_section("soft_targets", build_soft_targets)
