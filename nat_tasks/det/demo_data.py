"""A small generated VOC-format dataset: coloured shapes on textured backgrounds.

Writes the real on-disk layout mmdet's ``VOCDataset`` reads (``VOC2007/JPEGImages/*.jpg``,
``Annotations/*.xml`` with 1-based pixel boxes, ``ImageSets/Main/{trainval,test}.txt``), so the
whole method runs on CPU in minutes with no download. Each class is one shape with a jittered
base colour; 1-3 objects per image.
"""
import os
import xml.etree.ElementTree as ET

import numpy as np
from PIL import Image, ImageDraw

# The first three VOC class names (mmdet's VOCMetric prints VOC names by label index), drawn as:
# ellipse, rectangle, triangle.
DEMO_CLASSES = ("aeroplane", "bicycle", "bird")
_BASE_COLOURS = ((220, 60, 50), (40, 90, 220), (240, 200, 40))


def _background(rng, size):
    """Smooth colour gradient + stripes + noise: texture the detector must learn to ignore."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    c0, c1 = rng.uniform(40, 200, 3), rng.uniform(40, 200, 3)
    t = rng.uniform(0, 1)
    img = (c0 * (t * xx + (1 - t) * yy)[..., None] + c1 * (1 - (t * xx + (1 - t) * yy))[..., None])
    period = rng.uniform(6, 20)
    angle = rng.uniform(0, np.pi)
    stripes = np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * size / period * 2 * np.pi)
    img += 25 * stripes[..., None] + rng.normal(0, 12, img.shape)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def _overlaps(box, boxes):
    return any(not (box[2] < b[0] or b[2] < box[0] or box[3] < b[1] or b[3] < box[1]) for b in boxes)


def _draw_image(rng, size):
    image = _background(rng, size)
    draw = ImageDraw.Draw(image)
    objects = []
    for _ in range(int(rng.integers(1, 4))):
        for _attempt in range(20):
            w, h = rng.integers(size // 6, size // 2, 2)
            x0, y0 = rng.integers(0, size - w), rng.integers(0, size - h)
            box = (int(x0), int(y0), int(x0 + w - 1), int(y0 + h - 1))
            if not _overlaps(box, [b for _, b in objects]):
                break
        else:
            continue
        label = int(rng.integers(len(DEMO_CLASSES)))
        colour = tuple(int(np.clip(c + rng.integers(-30, 31), 0, 255)) for c in _BASE_COLOURS[label])
        if label == 0:
            draw.ellipse(box, fill=colour)
        elif label == 1:
            draw.rectangle(box, fill=colour)
        else:
            draw.polygon([(box[0], box[3]), (box[2], box[3]), ((box[0] + box[2]) // 2, box[1])], fill=colour)
        objects.append((label, box))
    return image, objects


def _annotation(filename, size, objects):
    root = ET.Element("annotation")
    ET.SubElement(root, "folder").text = "VOC2007"
    ET.SubElement(root, "filename").text = filename
    size_el = ET.SubElement(root, "size")
    for key, value in (("width", size), ("height", size), ("depth", 3)):
        ET.SubElement(size_el, key).text = str(value)
    for label, (x0, y0, x1, y1) in objects:
        obj = ET.SubElement(root, "object")
        ET.SubElement(obj, "name").text = DEMO_CLASSES[label]
        ET.SubElement(obj, "pose").text = "Unspecified"
        ET.SubElement(obj, "truncated").text = "0"
        ET.SubElement(obj, "difficult").text = "0"
        box = ET.SubElement(obj, "bndbox")
        # VOC boxes are 1-based inclusive pixel coordinates.
        for key, value in zip(("xmin", "ymin", "xmax", "ymax"), (x0 + 1, y0 + 1, x1 + 1, y1 + 1)):
            ET.SubElement(box, key).text = str(value)
    return ET.ElementTree(root)


def write_demo_voc(root, num_trainval=240, num_test=80, size=128, seed=0):
    """Write ``root/VOC2007/...``; returns the VOC2007 folder. Deterministic for a seed."""
    voc = os.path.join(root, "VOC2007")
    for sub in ("JPEGImages", "Annotations", os.path.join("ImageSets", "Main")):
        os.makedirs(os.path.join(voc, sub), exist_ok=True)
    rng = np.random.default_rng(seed)
    splits = {"trainval": [], "test": []}
    for index in range(num_trainval + num_test):
        image_id = f"{index:06d}"
        image, objects = _draw_image(rng, size)
        image.save(os.path.join(voc, "JPEGImages", f"{image_id}.jpg"), quality=95)
        _annotation(f"{image_id}.jpg", size, objects).write(os.path.join(voc, "Annotations", f"{image_id}.xml"))
        splits["trainval" if index < num_trainval else "test"].append(image_id)
    for split, ids in splits.items():
        with open(os.path.join(voc, "ImageSets", "Main", f"{split}.txt"), "w") as f:
            f.write("\n".join(ids) + "\n")
    return voc
