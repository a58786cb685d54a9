"""Check the VOC trees a config reads before training/testing starts: one clear line per problem.

mmdet would otherwise fail deep inside a dataloader worker (a missing file, an ``ElementTree``
parse error) after the model was built, with a long traceback.
"""
import os
import xml.etree.ElementTree as ET

from mmdet.datasets import VOCDataset

from ..core.errors import NatError

_HINT = "(see the README: VOCdevkit under data/, or python tools/make_demo_voc.py for a demo tree)"


def voc_datasets(dataset_cfg):
    """Yield the VOC-style dataset configs nested in Repeat/Concat/ClassBalanced wrappers."""
    if dataset_cfg is None:
        return
    if "datasets" in dataset_cfg:
        for child in dataset_cfg["datasets"]:
            yield from voc_datasets(child)
    elif "dataset" in dataset_cfg:
        yield from voc_datasets(dataset_cfg["dataset"])
    elif dataset_cfg.get("type") == "VOCDataset":
        yield dataset_cfg


def _object_names(xml_path):
    """The object names of one annotation file; a missing or malformed file is a NatError."""
    if not os.path.isfile(xml_path):
        raise NatError(f"missing VOC annotation {xml_path} {_HINT}")
    try:
        root = ET.parse(xml_path).getroot()
    except ET.ParseError as err:
        raise NatError(f"malformed VOC annotation {xml_path}: {err}") from None
    names = []
    for obj in root.findall("object"):
        box = obj.find("bndbox")
        try:
            name = obj.find("name").text.strip()
            coords = [float(box.find(k).text) for k in ("xmin", "ymin", "xmax", "ymax")]
        except (AttributeError, TypeError, ValueError):
            raise NatError(f"malformed VOC annotation {xml_path}: every <object> needs <name> and "
                           "a <bndbox> with numeric xmin/ymin/xmax/ymax") from None
        if not name or coords[2] < coords[0] or coords[3] < coords[1]:
            raise NatError(f"malformed VOC annotation {xml_path}: bad object {name!r} {coords}")
        names.append(name)
    return names


def check_voc_dataset(dataset_cfg):
    data_root = dataset_cfg.get("data_root", "") or ""
    sub_root = os.path.join(data_root, dataset_cfg.get("data_prefix", {}).get("sub_data_root", ""))
    ann_file = os.path.join(data_root, dataset_cfg["ann_file"])
    if not os.path.isfile(ann_file):
        raise NatError(f"VOC image list not found: {ann_file} {_HINT}")
    with open(ann_file) as f:
        image_ids = [line.strip() for line in f if line.strip()]
    if not image_ids:
        raise NatError(f"VOC image list {ann_file} is empty")
    names = set()
    for image_id in image_ids:
        image = os.path.join(sub_root, "JPEGImages", f"{image_id}.jpg")
        if not os.path.isfile(image):
            raise NatError(f"missing VOC image {image} (listed in {ann_file})")
        names.update(_object_names(os.path.join(sub_root, "Annotations", f"{image_id}.xml")))
    classes = (dataset_cfg.get("metainfo") or {}).get("classes") or VOCDataset.METAINFO["classes"]
    if not names & set(classes):
        raise NatError(f"no object of the classes {tuple(classes)} in {ann_file} (the annotations "
                       f"name {sorted(names)[:5]}): fix metainfo.classes or the data")


def check_voc_config(cfg, splits=("train_dataloader", "val_dataloader", "test_dataloader")):
    """Check every VOC dataset of the given dataloaders of an mmengine config."""
    for split in splits:
        loader = cfg.get(split)
        if loader:
            for dataset_cfg in voc_datasets(loader.get("dataset")):
                check_voc_dataset(dataset_cfg)
