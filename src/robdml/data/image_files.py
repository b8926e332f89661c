"""JPEG datasets (CUB-200-2011, CARS196, In-Shop, Stanford Online Products) after extraction:
the class-disjoint image lists, the training index file, and the test images decoded once at
test resolution.

Training images stay JPEG files, decoded by the loader workers on every access: decoded at full
size they would not fit in memory, and random crops need the full image. Test images are decoded
once, resized and centre-cropped, into a prepared split (`robdml.data.prepared`), so attacks and
evaluation read tensors instead of re-decoding thousands of JPEGs per model and eps.
"""

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from robdml.data.prepared import contiguous_labels, rebuild_data, save_split, train_class_count
from robdml.data.transforms import resize_center_crop
from robdml.io import torch_load, torch_save

log = logging.getLogger(__name__)

INDEX_FORMAT = "robdml-image-index/1"


class LayoutError(ValueError):
    """Extracted files that lack the layout a dataset module reads (one line naming the file)."""


@dataclass
class ImageSplit:
    """Train and test image files with their class ids (0-based, as the dataset numbers them);
    `class_names[label]` names a class. `test_meta` goes into the test split's meta."""

    train_paths: list[Path]
    train_labels: list[int]
    test_paths: list[Path]
    test_labels: list[int]
    class_names: list[str]
    test_meta: dict = field(default_factory=dict)

    def __post_init__(self):
        """Every image dataset's split is class-disjoint (DML tests on unseen classes), checked
        here, where each dataset module builds its split."""
        shared = set(self.train_labels) & set(self.test_labels)
        if shared:
            raise LayoutError(
                f"{len(shared)} classes in both the training and the test split (e.g. "
                f"{self.class_names[min(shared)]!r}); the split must be class-disjoint"
            )


def first_classes_split(
    paths: list[Path], labels: list[int], class_names: list[str], n_train_classes: int | None
) -> ImageSplit:
    """The standard deep-metric-learning split: the first `n_train_classes` class ids train,
    the others test (None: the first half), so no class is seen in both."""
    n_train_classes = train_class_count(n_train_classes, len(class_names))
    train = [label < n_train_classes for label in labels]
    return ImageSplit(
        train_paths=[path for path, is_train in zip(paths, train, strict=True) if is_train],
        train_labels=[label for label, is_train in zip(labels, train, strict=True) if is_train],
        test_paths=[path for path, is_train in zip(paths, train, strict=True) if not is_train],
        test_labels=[label for label, is_train in zip(labels, train, strict=True) if not is_train],
        class_names=class_names,
    )


def read_rgb(path: str | Path) -> torch.Tensor:
    """uint8 [3, H, W] as stored: Pillow's `Image.open(path).convert("RGB")`, the Proxy Anchor
    code's decoding (grey and CMYK JPEGs, a few in CUB and CARS196, and grey, palette or RGBA
    PNGs converted to RGB; an EXIF orientation tag not applied). torchvision's decoders are
    deprecated since 0.29; TorchCodec, their successor, always applies EXIF orientation and its
    PyPI wheels need torch's CUDA 13 runtime, so Pillow (already a torchvision dependency)
    decodes: pixel for pixel what torchvision's `decode_image` gave
    (tests/data/test_datasets.py)."""
    from PIL import Image

    with Image.open(path) as image:
        pixels = np.array(image if image.mode == "RGB" else image.convert("RGB"))
    return torch.from_numpy(pixels).permute(2, 0, 1)


def save_index(
    path: str | Path, image_paths: list[Path], labels: list[int], class_names: list[str], meta: dict
) -> None:
    """Write a training index atomically: image paths relative to the index's folder (so a
    data_root can be moved or mounted elsewhere), labels renumbered 0..C-1."""
    folder = Path(path).parent
    renumbered, originals = contiguous_labels(torch.tensor(labels, dtype=torch.int64))
    torch_save(
        path,
        {
            "format": INDEX_FORMAT,
            "paths": [Path(os.path.relpath(image, folder)).as_posix() for image in image_paths],
            "labels": renumbered,
            "class_names": [class_names[i] for i in originals.tolist()],
            "meta": meta,
        },
    )


def load_index(path: str | Path) -> dict:
    """{'paths': absolute image paths, 'labels': int64 [N], 'class_names': [...], 'meta': {...}}."""
    index = torch_load(path, "image index", rebuild_data(path), (INDEX_FORMAT,))
    folder = Path(path).resolve().parent
    return {**index, "paths": [folder / image for image in index["paths"]]}


def decode_test_images(paths: list[Path], resize_size: int, crop_size: int) -> torch.Tensor:
    """uint8 [N, 3, crop, crop]: each image resized (shorter side) and centre-cropped."""
    resize_crop = resize_center_crop(resize_size, crop_size)
    images = torch.empty((len(paths), 3, crop_size, crop_size), dtype=torch.uint8)
    for index, path in enumerate(paths):
        images[index] = resize_crop(read_rgb(path))
        if (index + 1) % 1000 == 0:
            log.info("decoded %d/%d test images", index + 1, len(paths))
    return images


def write_image_split(
    split: ImageSplit, spec: dict, train_path: str | Path, test_path: str | Path
) -> dict:
    """Write the training index and the decoded test split; returns a summary."""
    meta = {"source": spec["source"], "spec": spec}
    save_index(train_path, split.train_paths, split.train_labels, split.class_names, meta)
    images = decode_test_images(split.test_paths, spec["resize_size"], spec["image_size"])
    test_labels = torch.tensor(split.test_labels, dtype=torch.int64)
    save_split(test_path, images, test_labels, split.class_names, meta | split.test_meta)
    return {
        "train_images": len(split.train_labels),
        "train_classes": len(set(split.train_labels)),
        "test_images": len(split.test_labels),
        "test_classes": len(set(split.test_labels)),
    }
