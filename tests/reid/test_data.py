"""Missing or malformed data: one line naming the expected layout, nothing written."""
from .test_cli import one_line_error


def test_missing_or_malformed_data(tiny_args, train_reid, tmp_path, capsys):
    err = one_line_error(capsys, train_reid, tiny_args(tmp_path / "nowhere", tmp_path / "w",
                                                       "--epochs", 1))
    assert "Market-1501-v15.09.15/{bounding_box_train,query,bounding_box_test}" in err
    (tmp_path / "bad" / "market1501" / "bounding_box_train").mkdir(parents=True)
    (tmp_path / "bad" / "market1501" / "bounding_box_train" / "x.jpg").write_bytes(b"")
    err = one_line_error(capsys, train_reid, tiny_args(tmp_path / "bad", tmp_path / "w", "--epochs", 1))
    assert "no images in query, bounding_box_test" in err
    assert not (tmp_path / "w").exists()
