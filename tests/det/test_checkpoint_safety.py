"""No detection command runs code from a checkpoint: the detector under test (mmdet's
``load_from``), ``--resume``, ``load_from`` for training and the NAT adversary refuse a crafted
file with one line (exit 2), its payload never runs."""


def test_tested_detector(tiny_config, evil_checkpoint, tool_error, tmp_path):
    err = tool_error("test", tiny_config, evil_checkpoint.path, "--attack", "none", "--device", "cpu",
                     "--work-dir", tmp_path / "w", "--out", tmp_path / "results.json")
    evil_checkpoint.assert_refused(err)
    assert not (tmp_path / "results.json").exists()


def test_resume_and_load_from(tiny_config, evil_checkpoint, tool_error, tmp_path):
    for option in (["--resume", evil_checkpoint.path], ["--cfg-options", f"load_from={evil_checkpoint.path}"]):
        evil_checkpoint.assert_refused(tool_error("train", tiny_config, "--device", "cpu",
                                                  "--work-dir", tmp_path / "w", *option))
    assert not list((tmp_path / "w").glob("*.pth"))


def test_nat_adversary(tiny_config, evil_checkpoint, tool_error, tmp_path):
    config = tmp_path / "nat.py"
    config.write_text(f"_base_ = {tiny_config!r}\nmodel = dict(nasty=dict(weight=0.1, tau=2.0, adversary="
                      f"dict(config={tiny_config!r}, checkpoint={evil_checkpoint.path!r})))\n")
    evil_checkpoint.assert_refused(tool_error("train", config, "--device", "cpu", "--work-dir", tmp_path / "w"))
