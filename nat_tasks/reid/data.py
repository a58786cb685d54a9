"""torchreid data for re-ID training: [0, 1] images, identity sampling, layout checks, the embedded set.

Images stay in [0, 1] (``norm_mean=0, norm_std=1``): the model normalises inside, so attacks and
budgets are in pixel units. The generated Market-1501 tree is registered as the torchreid data set
``synthetic_market1501`` and written under ``ROOT/synthetic_market1501_v2/`` on first use.
"""
import os
import os.path as osp
import re
import shutil
import tempfile

from nat_tasks.core.errors import NatError

from .synthetic import SPLITS, write_market_tree

SYNTHETIC = "synthetic_market1501"
# The folder names the generator's version, so a tree written by an older one (v1: 24 queries)
# is never silently reused; bump it whenever DEMO_TREE or synthetic.py changes what is written.
SYNTHETIC_DIR = SYNTHETIC + "_v2"
# Enough test identities and queries (1-4 per identity, ~250) for intervals that can tell models apart.
DEMO_TREE = dict(test_ids=100, max_queries=4)
MARKET_TREE = ("ROOT/market1501/Market-1501-v15.09.15/{bounding_box_train,query,bounding_box_test}/"
               "*.jpg named like 0002_c1s1_000451_03.jpg")


def _registry():
    from torchreid.reid.data import datasets

    # torchreid keeps its name -> class table module-private; reading it is the only way to check
    # a name without instantiating (which would start a download for a missing folder).
    return vars(datasets)["__image_datasets"]


def _synthetic_dataset_class():
    from torchreid.reid.data.datasets.image import Market1501

    class SyntheticMarket1501(Market1501):
        """The embedded default: a generated Market-1501 tree, written on first use."""
        dataset_dir = SYNTHETIC_DIR
        dataset_url = None

        def __init__(self, root="", **kwargs):
            folder = osp.join(osp.abspath(osp.expanduser(root)), SYNTHETIC_DIR)
            if not osp.isdir(folder):
                write_tree_atomically(folder, **DEMO_TREE)
            super().__init__(root=root, **kwargs)

    return SyntheticMarket1501


def write_tree_atomically(folder, **kwargs):
    """Generate the synthetic tree in a temporary folder and rename it: never a half-written set."""
    parent = osp.dirname(osp.abspath(folder))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=parent, prefix=".tmp_synthetic_")
    try:
        write_market_tree(osp.join(tmp, "Market-1501-v15.09.15"), **kwargs)
        os.rename(tmp, folder)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not osp.isdir(folder):  # not merely another process winning the race
            raise
    return folder


def register_datasets():
    """Make ``synthetic_market1501`` a torchreid data set name (idempotent)."""
    registry = _registry()
    if SYNTHETIC not in registry:
        from torchreid.reid.data import register_image_dataset

        register_image_dataset(SYNTHETIC, _synthetic_dataset_class())


def check_dataset(root, name):
    """Fail with one line, before torchreid could try a download, if the data is not on disk."""
    register_datasets()
    registry = _registry()
    if name not in registry:
        raise NatError(f"unknown data set {name!r}; torchreid knows {sorted(registry)}")
    if name == SYNTHETIC:
        return
    folder = osp.join(osp.abspath(osp.expanduser(root)), registry[name].dataset_dir)
    if name == "market1501":
        base = osp.join(folder, "Market-1501-v15.09.15")
        base = base if osp.isdir(base) else folder
        missing = [s for s in SPLITS if not osp.isdir(osp.join(base, s))
                   or not any(f.endswith(".jpg") for f in os.listdir(osp.join(base, s)))]
        if missing:
            raise NatError(f"Market-1501 not found under {root}: no images in {', '.join(missing)} "
                           f"(expected {MARKET_TREE}; nothing is downloaded)")
        for split in SPLITS:
            check_market_names(osp.join(base, split))
    elif not osp.isdir(folder):
        raise NatError(f"{name} not found: expected torchreid's layout for it under {folder} "
                       "(nothing is downloaded)")


# torchreid's Market1501 parser: identity (-1: junk) and camera 1..6 from names like 0002_c1s1_000451_03.jpg
MARKET_NAME = re.compile(r"(-?\d+)_c(\d)")


def check_market_names(folder):
    """Every ``.jpg`` of a Market-1501 split has a name torchreid can parse; else one line naming
    the first that does not (torchreid itself fails on it with an AttributeError naming no file)."""
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".jpg"):
            continue
        match = MARKET_NAME.match(name)
        if match is None or not (-1 <= int(match.group(1)) <= 1501 and 1 <= int(match.group(2)) <= 6):
            raise NatError(f"Market-1501 image {osp.join(folder, name)}: the name does not parse as "
                           "<identity 0000-1501 or -1>_c<camera 1-6>s<sequence>_<frame>_<box>.jpg "
                           "(e.g. 0002_c1s1_000451_03.jpg): rename or remove it")


def build_datamanager(cfg, use_gpu=False):
    """torchreid's ``ImageDataManager`` of a config's ``data``, ``sampler``, ``train`` and ``test``
    sections (torchreid's ``imagedata_kwargs``), with identity sampling and [0, 1] images."""
    from torchreid.reid.data import ImageDataManager

    data, batch_size, num_instances = cfg.data, cfg.train.batch_size, cfg.sampler.num_instances
    check_dataset(data.root, data.sources)
    if not (batch_size >= 1 and num_instances >= 1) or batch_size % num_instances:
        raise NatError(f"batch size {batch_size} must be a multiple of --num-instances {num_instances}")
    try:
        return ImageDataManager(
            root=data.root, sources=data.sources, height=data.height, width=data.width,
            transforms=list(data.transforms), norm_mean=[0.0, 0.0, 0.0], norm_std=[1.0, 1.0, 1.0],
            use_gpu=use_gpu, batch_size_train=batch_size,
            batch_size_test=cfg.test.batch_size or batch_size, workers=data.workers,
            num_instances=num_instances, train_sampler=cfg.sampler.train_sampler)
    except (RuntimeError, AssertionError, AttributeError, ValueError) as err:
        # torchreid reports a wrong tree with asserts/RuntimeErrors deep inside its parsers.
        name, root = data.sources, data.root
        raise NatError(f"{name} under {root} does not have torchreid's expected layout "
                       f"({type(err).__name__}: {err or 'bad file names or too few identities'})"
                       + (f"; expected {MARKET_TREE}" if "market" in name else "")) from None
