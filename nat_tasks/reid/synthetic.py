"""The embedded default data set: a small generated tree in Market-1501's on-disk format.

Each identity is a cartoon person: skin-coloured head, a shirt and trousers in its own colours, a
shirt pattern (plain, stripes, a badge, a sash) and optionally a bag on one side. Cameras change
the tint and brightness; every image gets its own background, offset, scale and noise. Colours
are shared between identities, so telling people apart needs the combination, not one cue.

The tree has Market-1501's layout and file names (``{pid:04d}_c{cam}s1_{frame:06d}_{idx:02d}.jpg``),
test identities disjoint from training ones, distractors (pid ``0000``) and junk (pid ``-1``) in
the gallery, query identities seen by the gallery under other cameras and the same camera, and,
as in Market-1501, a varying number of query images per identity (one per camera), so the metric
attacks' padded guide sets (``attacks``) and images without another guide both occur.
"""
import os

import numpy as np
from PIL import Image

SHIRTS = np.array([[200, 30, 30], [30, 60, 190], [40, 150, 50], [230, 200, 40], [240, 240, 240],
                   [30, 30, 30], [150, 60, 170], [240, 130, 30]], dtype=np.float32)
TROUSERS = np.array([[20, 20, 60], [90, 90, 90], [160, 130, 90], [20, 20, 20], [60, 90, 150],
                     [110, 40, 40]], dtype=np.float32)
SKIN = np.array([224, 172, 140], dtype=np.float32)
PATTERNS = ("plain", "stripes", "badge", "sash")
SPLITS = ("bounding_box_train", "query", "bounding_box_test")


def _identity(rng):
    return {"shirt": SHIRTS[rng.integers(len(SHIRTS))], "trousers": TROUSERS[rng.integers(len(TROUSERS))],
            "pattern": PATTERNS[rng.integers(len(PATTERNS))], "accent": SHIRTS[rng.integers(len(SHIRTS))],
            "bag": int(rng.integers(3))}  # 0: none, 1: left, 2: right


def render_person(person, camera, rng, height=64, width=32):
    """One uint8 HxWx3 image of ``person`` seen by ``camera`` (an int >= 1)."""
    img = np.empty((height, width, 3), np.float32)
    img[:] = rng.uniform(60, 190, 3)  # background
    img += rng.normal(0, 12, img.shape)
    scale = rng.uniform(0.85, 1.0)
    ph, pw = int(height * scale), int(width * 0.6 * scale)
    top = rng.integers(0, height - ph + 1)
    left = int(np.clip((width - pw) // 2 + rng.integers(-3, 4), 0, width - pw))
    head, torso = int(ph * 0.18), int(ph * 0.42)
    y0, x0 = top, left
    img[y0:y0 + head, x0 + pw // 4:x0 + pw - pw // 4] = SKIN
    shirt = img[y0 + head:y0 + head + torso, x0:x0 + pw]
    shirt[:] = person["shirt"]
    if person["pattern"] == "stripes":
        shirt[::4] = person["accent"]
    elif person["pattern"] == "badge":
        shirt[torso // 4:torso // 4 + max(2, torso // 4), pw // 2:pw // 2 + max(2, pw // 3)] = person["accent"]
    elif person["pattern"] == "sash":
        for r in range(torso):
            c = int(r * (pw - 1) / max(torso - 1, 1))
            shirt[r, max(0, c - 1):c + 2] = person["accent"]
    legs = img[y0 + head + torso:y0 + ph, x0:x0 + pw]
    legs[:] = person["trousers"]
    legs[:, pw // 2 - 1:pw // 2 + 1] = img[y0 + ph - 1, 0]  # gap between the legs
    if person["bag"]:
        bx = max(0, x0 - 4) if person["bag"] == 1 else min(width - 4, x0 + pw)
        img[y0 + head + torso // 2:y0 + head + torso, bx:bx + 4] = person["accent"] * 0.6
    cam_rng = np.random.default_rng(1000 + camera)  # a camera always has the same colour cast
    img = img * cam_rng.uniform(0.7, 1.2, 3) + cam_rng.uniform(-20, 20)
    img += rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _name(pid, camera, frame, index):
    pid_text = "-1" if pid == -1 else f"{pid:04d}"
    return f"{pid_text}_c{camera}s1_{frame:06d}_{index:02d}.jpg"


def write_market_tree(folder, train_ids=16, test_ids=12, images_per_id=8, cameras=4,
                      distractors=12, junk=6, seed=0, height=64, width=32, max_queries=2):
    """Write ``bounding_box_train``, ``query`` and ``bounding_box_test`` under ``folder``.

    Training identities get ``images_per_id`` images over all cameras. Every test identity has
    one query image in each of 1 to ``max_queries`` cameras (uniformly) and ``images_per_id``
    gallery images over all cameras (so some share a query's camera and are filtered by the
    protocol).
    """
    if not 1 <= max_queries <= cameras:
        raise ValueError(f"max_queries={max_queries}: queries need distinct cameras (1..{cameras})")
    rng = np.random.default_rng(seed)
    for split in SPLITS:
        os.makedirs(os.path.join(folder, split), exist_ok=True)
    frame = 0

    def save(split, pid, person, camera):
        nonlocal frame
        frame += 1
        path = os.path.join(folder, split, _name(pid, camera, frame, 1))
        Image.fromarray(render_person(person, camera, rng, height, width)).save(path, quality=95)

    people = {pid: _identity(rng) for pid in range(1, train_ids + test_ids + 1)}
    for pid in range(1, train_ids + 1):
        for i in range(images_per_id):
            save("bounding_box_train", pid, people[pid], 1 + i % cameras)
    for pid in range(train_ids + 1, train_ids + test_ids + 1):
        query_cams = rng.choice(np.arange(1, cameras + 1), size=rng.integers(1, max_queries + 1),
                                replace=False)
        for camera in query_cams:
            save("query", pid, people[pid], int(camera))
        for i in range(images_per_id):
            save("bounding_box_test", pid, people[pid], 1 + i % cameras)
    for pid, count in ((0, distractors), (-1, junk)):
        for _ in range(count):
            save("bounding_box_test", pid, _identity(rng), int(rng.integers(1, cameras + 1)))
    return folder
