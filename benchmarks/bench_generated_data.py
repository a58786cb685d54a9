"""Reading a generated-image ``.npz`` (Wang et al. 2023's format): memory and disk reads, ours vs the
reference's ``np.load``.

    python benchmarks/bench_generated_data.py [--images 300000] [--reads 4096] [--rounds 3] [--dir DIR]

Writes an ``np.savez`` file of ``--images`` random 32x32x3 images in ``--dir`` (default: a temporary
folder; 0.92 GB for 300k), then, each measurement in a fresh process with the file evicted from the
page cache (``posix_fadvise(DONTNEED)`` on this file only), in interleaved rounds:
- open: seconds and anonymous memory (RssAnon) to open the set: ``GeneratedImages`` (memory-mapped)
  vs the reference's ``np.load(path)['image']``;
- random reads: MB read from disk to fetch ``--reads`` random images through our mapping
  (``MADV_RANDOM``) vs a plain ``np.memmap`` of the same bytes (kernel read-ahead).
Linux only (/proc/self/status, /proc/self/io). Prints medians and the CPU model.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

from bench_common import cpu_info

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def rss_anon_mb():
    status = dict(line.split(":", 1) for line in open("/proc/self/status"))
    return int(status["RssAnon"].split()[0]) / 1024


def disk_read_mb():
    io = dict(line.split(": ") for line in open("/proc/self/io").read().splitlines())
    return int(io["read_bytes"]) / 2 ** 20


def evict(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def measure(kind, path, reads):
    """One measurement in this (fresh) process: a dict of figures."""
    from nat_tasks.cls.data.generated_data import GeneratedImages

    evict(path)
    memory, start = rss_anon_mb(), time.perf_counter()
    if kind == "open_ours":
        opened = GeneratedImages(path, num_classes=10)
    elif kind == "open_reference":
        with np.load(path) as archive:
            opened = archive["image"], archive["label"]
    else:
        ours = GeneratedImages(path, num_classes=10)
        if kind == "reads_ours":
            image = ours.image
        else:  # the same bytes through a plain np.memmap
            part = ours._parts[0]
            plain = np.memmap(path, np.uint8, mode="r", shape=part.shape, offset=part._offset)
            image = plain.__getitem__
        indices = np.random.default_rng(0).integers(0, len(ours), reads)
        before, start = disk_read_mb(), time.perf_counter()
        for i in indices:
            np.array(image(i))
        return dict(seconds=time.perf_counter() - start, disk_mb=disk_read_mb() - before)
    figures = dict(seconds=time.perf_counter() - start, anon_mb=rss_anon_mb() - memory)
    del opened  # measured while held
    return figures


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=300_000)
    parser.add_argument("--reads", type=int, default=4096)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", default=None)
    parser.add_argument("--measure", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure[0], args.measure[1], args.reads)))
        return
    print(json.dumps(dict(cpu=cpu_info(), images=args.images, reads=args.reads, rounds=args.rounds)))
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        path = os.path.join(folder, "generated.npz")
        rng = np.random.default_rng(0)
        np.savez(path, image=rng.integers(0, 256, (args.images, 32, 32, 3), dtype=np.uint8),
                 label=np.arange(args.images) % 10)
        kinds = ("open_ours", "open_reference", "reads_ours", "reads_plain_memmap")
        results = {kind: [] for kind in kinds}
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (REPO, os.environ.get("PYTHONPATH")) if p))
        for _ in range(args.rounds):
            for kind in kinds:
                done = subprocess.run([sys.executable, __file__, "--reads", str(args.reads), "--measure", kind, path],
                                      capture_output=True, text=True, env=env, check=True)
                results[kind].append(json.loads(done.stdout.strip().splitlines()[-1]))
        size_gb = os.path.getsize(path) / 1e9
    for kind, rows in results.items():
        medians = {key: round(statistics.median(r[key] for r in rows), 3) for key in rows[0]}
        print(json.dumps(dict(kind=kind, file_gb=round(size_gb, 2), **medians)))


if __name__ == "__main__":
    main()
