"""Writers for tiny copies of the real datasets, byte for byte in their published on-disk formats."""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np

CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def cifar_images(n: int, seed: int) -> np.ndarray:
    """uint8 (n, 3, 32, 32) with a different constant offset per channel, so a channel mix-up shows."""
    x = rng(seed).integers(0, 80, size=(n, 3, 32, 32), dtype=np.uint8)
    x[:, 1] += 80
    x[:, 2] += 160
    return x


def write_cifar10(folder: Path, per_batch: int = 4, n_test: int = 6, seed: int = 0) -> dict:
    """cifar-10-batches-py: data_batch_1..5, test_batch, batches.meta (protocol-2 pickles, bytes keys)."""
    folder.mkdir(parents=True, exist_ok=True)
    r = rng(seed)
    out = {"train_x": [], "train_y": []}
    for i in range(1, 6):
        x = cifar_images(per_batch, seed + i)
        y = r.integers(0, 10, per_batch).tolist()
        _dump(folder / f"data_batch_{i}", {b"batch_label": b"training batch", b"labels": y, b"data": x.reshape(per_batch, -1),
                                           b"filenames": [b"f.png"] * per_batch})
        out["train_x"].append(x)
        out["train_y"] += y
    out["train_x"] = np.concatenate(out["train_x"])
    out["test_x"] = cifar_images(n_test, seed + 99)
    out["test_y"] = r.integers(0, 10, n_test).tolist()
    _dump(folder / "test_batch", {b"labels": out["test_y"], b"data": out["test_x"].reshape(n_test, -1)})
    _dump(folder / "batches.meta", {b"label_names": [n.encode() for n in CIFAR10_NAMES], b"num_vis": 3072})
    return out


def write_cifar100(folder: Path, n_train: int = 12, n_test: int = 5, seed: int = 1) -> dict:
    """cifar-100-python: train, test, meta with fine and coarse labels."""
    folder.mkdir(parents=True, exist_ok=True)
    r = rng(seed)
    out = {"train_x": cifar_images(n_train, seed), "test_x": cifar_images(n_test, seed + 1),
           "train_y": r.integers(0, 100, n_train).tolist(), "test_y": r.integers(0, 100, n_test).tolist()}
    for split in ("train", "test"):
        x, y = out[f"{split}_x"], out[f"{split}_y"]
        _dump(folder / split, {b"data": x.reshape(len(x), -1), b"fine_labels": y,
                               b"coarse_labels": [v // 5 for v in y]})
    _dump(folder / "meta", {b"fine_label_names": [f"fine{i}".encode() for i in range(100)],
                            b"coarse_label_names": [f"coarse{i}".encode() for i in range(20)]})
    return out


def _dump(path: Path, obj) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


def write_cifar_c(folder: Path, test_labels: list[int], corruptions=("gaussian_noise", "fog")) -> dict:
    """<corruption>.npy (5 * n, 32, 32, 3) uint8, severity s in rows [(s-1) n, s n); labels.npy tiled 5 times.

    Pixel (row r, y, x, channel c) = (7 * r + 50 * c + k) % 256 for the k-th corruption, so every row,
    severity and channel is recognisable.
    """
    folder.mkdir(parents=True, exist_ok=True)
    n = len(test_labels)
    out = {}
    for k, name in enumerate(corruptions):
        rows = np.arange(5 * n)[:, None, None, None]
        chans = np.arange(3)[None, None, None, :]
        arr = ((7 * rows + 50 * chans + k) % 256 * np.ones((1, 32, 32, 1))).astype(np.uint8)
        np.save(folder / f"{name}.npy", arr)
        out[name] = arr
    np.save(folder / "labels.npy", np.tile(np.asarray(test_labels, dtype=np.uint8), 5))
    return out


def idx_bytes(array: np.ndarray, magic: int) -> bytes:
    return struct.pack(f">I{array.ndim}I", magic, *array.shape) + array.astype(np.uint8).tobytes()


def write_mnist(folder: Path, n_train: int = 20, n_test: int = 7, seed: int = 2) -> dict:
    """The four gzip IDX files (magic 0x803 images, 0x801 labels, big-endian); labels cycle through the classes."""
    folder.mkdir(parents=True, exist_ok=True)
    r = rng(seed)
    out = {"train_x": r.integers(0, 256, (n_train, 28, 28), dtype=np.uint8), "train_y": r.permutation(np.arange(n_train) % 10),
           "test_x": r.integers(0, 256, (n_test, 28, 28), dtype=np.uint8), "test_y": r.permutation(np.arange(n_test) % 10)}
    files = {"train-images-idx3-ubyte.gz": idx_bytes(out["train_x"], 0x803),
             "train-labels-idx1-ubyte.gz": idx_bytes(out["train_y"], 0x801),
             "t10k-images-idx3-ubyte.gz": idx_bytes(out["test_x"], 0x803),
             "t10k-labels-idx1-ubyte.gz": idx_bytes(out["test_y"], 0x801)}
    for name, raw in files.items():
        (folder / name).write_bytes(gzip.compress(raw))
    return out


def write_mnist_c(folder: Path, clean: dict, corruptions=("identity", "fog", "zigzag")) -> dict:
    """mnist_c/<name>/{train,test}_{images,labels}.npy, images (N, 28, 28, 1) uint8; identity = clean."""
    out = {}
    for k, name in enumerate(corruptions):
        sub = folder / name
        sub.mkdir(parents=True, exist_ok=True)
        for split in ("train", "test"):
            x = clean[f"{split}_x"] if name == "identity" else (255 - clean[f"{split}_x"]) // (k + 1)
            np.save(sub / f"{split}_images.npy", x[..., None].astype(np.uint8))
            np.save(sub / f"{split}_labels.npy", np.asarray(clean[f"{split}_y"], dtype=np.uint8))
            out[(name, split)] = x
    return out


def write_image_folder(root: Path, classes=("cat", "dog", "emu"), per_class: int = 3, size: int = 12,
                       seed: int = 3) -> dict:
    """root/<class>/<i>.png, RGB PNGs (lossless)."""
    from PIL import Image

    r = rng(seed)
    out = {}
    for name in classes:
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            x = r.integers(0, 256, (size, size, 3), dtype=np.uint8)
            Image.fromarray(x).save(root / name / f"{i:03d}.png")
            out[(name, i)] = x
    return out
