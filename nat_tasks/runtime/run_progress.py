"""Where a training run is, for methods whose behaviour depends on the epoch (AWP's and IAD's
warm-up, the self-adaptive soft targets' start).

mmengine's ``RuntimeInfoHook`` (in every runner) records the epoch in the message hub at the
start of every epoch and when ``--resume`` restores a run, so no hook of ours is configured.
"""
from mmengine.logging import MessageHub


def runner_epoch():
    """The 0-based epoch of the running mmengine runner, ``None`` outside a runner."""
    try:
        return MessageHub.get_current_instance().get_info("epoch")
    except RuntimeError:  # no message hub: no runner was built in this process
        return None
