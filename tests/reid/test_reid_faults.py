"""Re-ID data faults: a Market-1501 file name torchreid cannot parse is one line naming the file."""
import shutil

from .test_cli import one_line_error


def test_an_unparsable_market_name_names_the_file(market_root, tiny_args, train_reid, tmp_path, capsys):
    tree = tmp_path / "data"
    shutil.copytree(market_root, tree)
    gallery = tree / "market1501" / "Market-1501-v15.09.15" / "bounding_box_test"
    shutil.copy(next(gallery.glob("*.jpg")), gallery / "IMG_0042.jpg")  # a photo dropped in by hand
    err = one_line_error(capsys, train_reid, tiny_args(tree, tmp_path / "w", "--epochs", 1))
    assert err.startswith(f"error: Market-1501 image {gallery / 'IMG_0042.jpg'}: the name does not parse as ")
    assert "rename or remove it" in err and not list(tmp_path.glob("w/*.pth"))
