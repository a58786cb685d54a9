"""Mixed-precision training (``--amp``) on mmengine: autocast for the training forward pass, and so
for every inner attack step crafted in it, with the optimizer on float32 weights.

mmengine's ``BaseModel.train_step`` (and its DDP wrapper's) runs ``forward(mode='loss')`` inside
``optim_wrapper.optim_context``, which for an ``AmpOptimWrapper`` is ``torch.autocast``. Our
training-time attacks run in that forward (classification's methods, detection's MTD), so their
forward and input-gradient passes run in reduced precision too. The perturbation itself stays
float32: autocast casts a float32 input for each matmul/convolution, the input gradient flows
back to the float32 tensor, and the step, projection and clamp are float32 element-wise ops. The
parameters stay float32 (autocast casts copies per op, cached for the step) and the optimizer
updates those: the "master weights". Validation and test loops run without autocast
(mmengine's ``ValLoop``/``TestLoop`` with ``fp16=False``), i.e. in float32.

Why a subclass of ``AmpOptimWrapper``: mmengine 0.10.7's asserts a CUDA/NPU/MLU/MUSA device in
its ``__init__`` and builds ``torch.cuda.amp.GradScaler``, so ``--amp`` fails on a CPU. bfloat16
has float32's exponent range and needs no loss scaling (the scaler is off); float16 (GPUs without
bfloat16) gets torch's dynamic ``GradScaler``. Everything else (backward, step, state_dict with
the scaler, ``optim_context``) is mmengine's.
"""
import torch
from mmengine.device import get_device
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS

from nat_tasks.core.errors import NatError

AMP_DTYPES = ("bfloat16", "float16")
WRAPPER = "MixedPrecisionOptimWrapper"


def amp_dtype(device_type, requested=None):
    """The autocast dtype name for ``device_type`` (``'cpu'`` / ``'cuda'``): ``requested`` if the
    device can run it (else one line saying what it can), by default bfloat16 where supported
    (CPUs; GPUs from Ampere on), else float16."""
    if requested is not None and requested not in AMP_DTYPES:
        raise NatError(f"--amp-dtype {requested!r}: expected one of {', '.join(AMP_DTYPES)}")
    if device_type == "cpu":
        if requested == "float16":  # mmengine's autocast allows only bfloat16 on CPUs
            raise NatError("--amp-dtype float16 needs a CUDA device; CPU autocast runs bfloat16 (the default)")
        return "bfloat16"
    if device_type == "cuda":
        bf16 = torch.cuda.is_bf16_supported()
        if requested == "bfloat16" and not bf16:
            raise NatError(f"--amp-dtype bfloat16: {torch.cuda.get_device_name()} has no bfloat16 support; "
                           "use float16 (the default there)")
        return requested or ("bfloat16" if bf16 else "float16")
    raise NatError(f"--amp runs on cpu or cuda devices, not {device_type}")


@OPTIM_WRAPPERS.register_module(name=WRAPPER)
class MixedPrecisionOptimWrapper(AmpOptimWrapper):
    """``AmpOptimWrapper`` on CPUs and GPUs: ``dtype`` (``'bfloat16'``, ``'float16'`` or None: the
    device's default, see ``amp_dtype``); ``loss_scale`` (float16 only) as mmengine's:
    ``'dynamic'``, a float (static) or a dict of ``GradScaler`` arguments."""

    def __init__(self, dtype=None, loss_scale="dynamic", **kwargs):
        OptimWrapper.__init__(self, **kwargs)  # not AmpOptimWrapper's: it asserts a GPU (see above)
        device_type = get_device()
        name = amp_dtype(device_type, dtype)
        self.cast_dtype = getattr(torch, name)
        self._scale_update_param = loss_scale if isinstance(loss_scale, float) else None
        if isinstance(loss_scale, float):
            scaler_args = dict(init_scale=loss_scale)
        elif isinstance(loss_scale, dict):
            scaler_args = dict(loss_scale)
        elif loss_scale == "dynamic":
            scaler_args = {}
        else:
            raise NatError(f"optim_wrapper.loss_scale={loss_scale!r}: expected 'dynamic', a float or a dict")
        self.loss_scaler = torch.amp.GradScaler(device_type, enabled=name == "float16", **scaler_args)


def enable_amp(cfg, dtype=None):
    """Switch ``cfg``'s optimizer wrapper to ``MixedPrecisionOptimWrapper`` (``--amp``) on the device
    this process trains on (after ``select_runner_device``); returns the dtype name. The config's
    optimizer, clipping and parameter-wise settings are kept."""
    wrapper = cfg.get("optim_wrapper")
    if wrapper is None or wrapper.get("type", "OptimWrapper") not in ("OptimWrapper", "AmpOptimWrapper", WRAPPER):
        kind = None if wrapper is None else wrapper.get("type")
        raise NatError(f"--amp needs optim_wrapper of type OptimWrapper in the config, not {kind}")
    name = amp_dtype(get_device(), dtype)
    wrapper.type, wrapper.dtype = WRAPPER, name
    wrapper.setdefault("loss_scale", "dynamic")
    return name
