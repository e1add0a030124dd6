"""Labelled image sets for the diffusion recipe and the vision benchmark, as (N, C, H, W) tensors in
[-1, 1] with integer labels: Fashion-MNIST from the Debian package (offline), any ``imagefolder``
(one sub-folder per class), or a Hub image dataset (online)."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import numpy as np
import torch

FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
METADATA_FILES = ("metadata.csv", "metadata.jsonl", "metadata.parquet")  # what datasets' imagefolder reads
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                         "Ankle boot")


def load_fashion_mnist(split: str, folder: Path = FASHION_MNIST) -> tuple[torch.Tensor, torch.Tensor]:
    """Fashion-MNIST's ``train`` or ``test`` split from the IDX files of ``apt-get install dataset-fashion-mnist``."""
    prefix = "train" if split == "train" else "t10k"
    images_path, labels_path = folder / f"{prefix}-images-idx3-ubyte.gz", folder / f"{prefix}-labels-idx1-ubyte.gz"
    if not images_path.exists():  # the diffusion recipe checks this at parse time; a Python caller may not
        raise SystemExit(f"{images_path} is missing: apt-get install dataset-fashion-mnist")
    with gzip.open(images_path) as handle:
        images = np.frombuffer(handle.read(), dtype=np.uint8, offset=16).reshape(-1, 1, 28, 28)
    with gzip.open(labels_path) as handle:
        labels = np.frombuffer(handle.read(), dtype=np.uint8, offset=8)
    return torch.from_numpy(images.astype(np.float32) / 127.5 - 1.0), torch.from_numpy(labels.astype(np.int64))


def images_to_tensor(images, size: int, channels: int) -> tuple[torch.Tensor, int]:
    """PIL images → (N, channels, size, size) in [-1, 1]; also how many had to change channel count."""
    mode = {1: "L", 3: "RGB"}.get(channels)
    if mode is None:  # --channels is refused at parse time; a Python caller may pass anything
        raise SystemExit(f"images can be converted to 1 (grey) or 3 (RGB) channels, not {channels}")
    converted, arrays = 0, []
    for image in images:
        if image.mode != mode:
            converted += image.mode not in ("L", "RGB") or len(image.getbands()) != channels
            image = image.convert(mode)
        image = image.resize((size, size))
        array = np.asarray(image, dtype=np.float32).reshape(size, size, channels)
        arrays.append(array.transpose(2, 0, 1) / 127.5 - 1.0)
    return torch.from_numpy(np.stack(arrays)), converted


def imagefolder_columns(folder: str | Path) -> list[str] | None:
    """The columns ``datasets`` gives an imagefolder: ``image`` and ``label`` (its class folders) or,
    where it has a metadata.csv / metadata.jsonl, that file's columns (``file_name`` read as ``image``,
    ``X_file_name`` as ``X``). None where a metadata file is not read here (parquet, or no header)."""
    metadata = sorted(path for path in Path(folder).rglob("metadata.*") if path.name in METADATA_FILES)
    if not metadata:
        return ["image", "label"]
    first = metadata[0]
    keys = None if first.suffix == ".parquet" else _metadata_keys(first)
    return [_image_column(key) for key in keys] if keys else None


def _metadata_keys(path: Path) -> list[str] | None:
    """A metadata.csv's header, or the keys of a metadata.jsonl's first record; None where neither reads."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            if path.suffix == ".csv":
                return next(csv.reader(handle), [])
            record = json.loads(handle.readline())
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return list(record) if isinstance(record, dict) else None


def _image_column(key: str) -> str:
    """The column ``datasets`` makes of a metadata key: ``file_name`` → ``image``, ``X_file_name`` → ``X``."""
    if key == "file_name":
        return "image"
    if key.endswith("_file_name"):
        return key[: -len("_file_name")]
    return key


def load_image_dataset(source: str, split: str, size: int, channels: int, image_column: str = "image",
                       label_column: str = "label") -> tuple[torch.Tensor, torch.Tensor, list[str], int]:
    """An ``imagefolder`` (a local folder) or a Hub dataset: (images, labels, class names, converted count)."""
    import datasets

    local = Path(source).is_dir()
    data = datasets.load_dataset("imagefolder", data_dir=source) if local else datasets.load_dataset(source)
    if split not in data:
        raise SystemExit(f"{source} has no '{split}' split; it has {list(data)}")
    part = data[split]
    missing = [c for c in (image_column, label_column) if c not in part.column_names]
    if missing:  # the recipe checks a local imagefolder's columns at parse time; a Hub dataset's are seen here
        raise SystemExit(f"{source} has no column(s) {missing}; it has {part.column_names}")
    feature = part.features[label_column]
    names = list(feature.names) if hasattr(feature, "names") else sorted({str(v) for v in part[label_column]})
    labels = [v if hasattr(feature, "names") else names.index(str(v)) for v in part[label_column]]
    images, converted = images_to_tensor(part[image_column], size, channels)
    return images, torch.tensor(labels, dtype=torch.long), names, converted
