"""Small data in the real CIFAR-10 on-disk format and tiny trainer configs for the cls trainer tests."""
import os
import pickle
import subprocess
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIGS = os.path.join(REPO, "configs", "cls")
VAL_SIZE = 20  # of write_cifar10's 100 training images: the tiny configs' validation split


def learnable_images(n, seed, num_classes=10):
    """uint8 (n, 32, 32, 3) images whose class is a bright 8x8 block position, plus noise."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % num_classes
    rng.shuffle(labels)
    images = rng.integers(0, 90, size=(n, 32, 32, 3))
    for i, c in enumerate(labels):
        r, col = divmod(int(c), 4)
        images[i, 8 * r:8 * r + 8, 8 * col:8 * col + 8, c % 3] = 230
    return images.astype(np.uint8), labels.tolist()


def write_cifar10(root, per_batch=20, n_test=40, seed=0):
    """``<root>/cifar-10-batches-py/data_batch_1..5, test_batch`` as Python-2-style pickles."""
    folder = os.path.join(root, "cifar-10-batches-py")
    os.makedirs(folder, exist_ok=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for k, name in enumerate(names):
        images, labels = learnable_images(n_test if name == "test_batch" else per_batch, seed + k)
        batch = {b"batch_label": name.encode(), b"labels": labels,
                 b"data": images.transpose(0, 3, 1, 2).reshape(len(labels), -1),
                 b"filenames": [f"{name}_{i}.png".encode() for i in range(len(labels))]}
        with open(os.path.join(folder, name), "wb") as f:
            pickle.dump(batch, f, protocol=2)
    return root


def write_config(path, base="cifar10_preact18_pgdat.py", data_root=None, **sections):
    """A config inheriting a repo config, with a small CNN and small batches, plus ``sections``.

    Each keyword is a top-level config key whose dict is merged into the base (mmengine rules).
    Validation holds ``VAL_SIZE`` of the training images out; the test loader reads the test batch.
    """
    lines = [f"_base_ = [{os.path.join(CONFIGS, base)!r}]"]
    tiny = dict(
        model=dict(arch="small_cnn", val_attack=dict(steps=2, n_examples=16)),
        train_dataloader=dict(batch_size=25, num_workers=0, dataset=dict(data_root=data_root, val_size=VAL_SIZE)),
        val_dataloader=dict(batch_size=20, num_workers=0, dataset=dict(data_root=data_root, val_size=VAL_SIZE)),
        test_dataloader=dict(batch_size=20, num_workers=0, dataset=dict(data_root=data_root)),
        train_cfg=dict(max_epochs=2),
        default_hooks=dict(logger=dict(interval=1)),
    )
    for key, value in sections.items():
        tiny[key] = _merge(tiny.get(key, {}), value) if isinstance(value, dict) else value
    lines += [f"{key} = {value!r}" for key, value in tiny.items()]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return str(path)


def _merge(a, b):
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def run_tool(tool, *args, cwd=None, timeout=300):
    """Run ``tools/<tool>`` in a subprocess on CPU; returns the CompletedProcess."""
    pythonpath = os.pathsep.join(p for p in (REPO, os.environ.get("PYTHONPATH")) if p)
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", MPLBACKEND="Agg", PYTHONPATH=pythonpath)
    return subprocess.run([sys.executable, os.path.join(REPO, "tools", tool), *map(str, args)],
                          cwd=cwd or REPO, env=env, capture_output=True, text=True, timeout=timeout)


def assert_one_line_error(proc, *fragments):
    """A bad-input run: non-zero exit, no traceback, an ``error:`` line naming the problem."""
    assert proc.returncode != 0, proc.stdout[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, proc.stderr[-3000:]
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]
