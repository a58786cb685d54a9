"""``tools/train.py --amp``: MTD's inner attack runs under the AMP wrapper's autocast (it is crafted
in the detector's ``loss()``, inside mmengine's ``optim_context``) while its candidates, the pixels
the detector trains on, stay float32 inside the eps ball; the weights stay float32."""
import pytest
import torch
from mmengine.optim import build_optim_wrapper

import nat_tasks.det.mtd as mtd
from nat_tasks.runtime.amp import WRAPPER

from .conftest import build_detector
from .helpers import EPS, data_batch, load_tool


def test_mtd_train_step_attacks_in_bf16_and_keeps_fp32_pixels_and_weights(tiny_config, attack_spy):
    detector, cfg = build_detector(tiny_config, mtd=dict(eps=EPS, alpha=4, steps=2))
    wrapper = build_optim_wrapper(detector, dict(type=WRAPPER, optimizer=dict(type="SGD", lr=0.01)))
    crafted = attack_spy(mtd)
    head_dtypes = []
    detector.bbox_head.register_forward_hook(lambda m, args, out: head_dtypes.append(out[0][0].dtype))
    detector.train()
    log = detector.train_step(data_batch(cfg, 2), wrapper)

    assert torch.isfinite(log["loss"])
    assert len(crafted) == 2  # MTD's classification and localisation candidates
    for autocast, x, x_adv in crafted:
        assert autocast == (True, torch.bfloat16)
        assert x_adv.dtype == torch.float32
        assert (x_adv - x).abs().max() <= EPS + 1e-4  # pixels are 0..255
        assert x_adv.min() >= 0 and x_adv.max() <= 255
    assert head_dtypes and set(head_dtypes) == {torch.bfloat16}
    assert all(p.dtype == torch.float32 for p in detector.parameters())


def test_train_cli_amp_dtype_the_device_cannot_run_is_one_line(tiny_config, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # what --device cpu sets; restored afterwards
    with pytest.raises(SystemExit) as exit_info:
        load_tool("train").main([tiny_config, "--amp", "--amp-dtype", "float16", "--device", "cpu",
                                 "--work-dir", str(tmp_path / "w")])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip() == ("error: --amp-dtype float16 needs a CUDA device; "
                                               "CPU autocast runs bfloat16 (the default)")
    assert not (tmp_path / "w").exists()  # it fails before the runner makes anything
