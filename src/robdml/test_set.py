"""A test set for `robdml.evaluate` from what a user holds: an image tensor with its labels, an
`ImageFolder`-style directory (one subdirectory of images per class), or a `DataLoader` of
(images, labels) batches. It becomes the split the workflow's attack jobs read
(robdml.data.prepared: uint8 [N, C, H, W] images, labels 0..C-1, class names, meta): the
attacker delivers 8-bit images, so float images in [0, 1] are rounded to the pixel grid first.
"""

from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

from robdml.data.prepared import contiguous_labels

MODES = {1: "L", 3: "RGB"}  # a directory's images, by channels


class TestSetError(ValueError):
    """Images or labels that cannot make a test set; the message is one line."""


def as_test_set(images, labels=None, image_size: int | None = None, channels: int = 3) -> dict:
    """{'images': uint8 [N, C, H, W], 'labels', 'class_names', 'meta'} from a tensor (with
    `labels`), a directory or a DataLoader. A directory's images are read as `channels` (3:
    RGB, 1: grey) and, given `image_size`, resized (shorter side) and centre-cropped to it;
    without it they must all have one size."""
    if isinstance(images, str | Path):
        if labels is not None:
            raise TestSetError("labels come from the directory's class folders; pass none")
        return from_directory(Path(images), image_size, channels)
    if isinstance(images, DataLoader):
        if labels is not None:
            raise TestSetError("labels come from the DataLoader's batches; pass none")
        batches = list(images)
        images = torch.cat([batch[0] for batch in batches])
        labels = torch.cat([torch.as_tensor(batch[1]) for batch in batches])
    if not torch.is_tensor(images):
        raise TestSetError(
            f"images: a tensor, a directory or a DataLoader, not a {type(images).__name__}"
        )
    if labels is None:
        raise TestSetError("labels: the test images' classes are needed to score the clustering")
    labels = torch.as_tensor(labels)
    if images.dim() != 4 or labels.shape != (len(images),):
        raise TestSetError(
            f"images of shape {tuple(images.shape)} with labels of shape {tuple(labels.shape)}:"
            " expected [N, C, H, W] and [N]"
        )
    return split(to_uint8(images), labels)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """uint8 images as they are; float ones in [0, 1] rounded to the 8-bit grid."""
    if images.dtype == torch.uint8:
        return images
    if not images.is_floating_point():
        raise TestSetError(f"images of dtype {images.dtype}: uint8, or float in [0, 1]")
    if images.min() < 0 or images.max() > 1:
        raise TestSetError(
            f"float images span [{images.min():.3g}, {images.max():.3g}], not [0, 1]:"
            " pass them before normalisation (mean and std go to evaluate)"
        )
    return torch.round(images * 255).to(torch.uint8)


def from_directory(root: Path, image_size: int | None, channels: int) -> dict:
    """Every image under root/<class>/, read with torchvision's ImageFolder."""
    if not root.is_dir():
        raise TestSetError(f"{root}: no such directory of class folders")
    if channels not in MODES:
        raise TestSetError(f"channels {channels}: 1 (grey) or 3 (RGB)")
    steps = [transforms.Resize(image_size), transforms.CenterCrop(image_size)] if image_size else []
    try:
        folder = datasets.ImageFolder(
            root, transform=transforms.Compose([*steps, transforms.PILToTensor()]),
            loader=lambda path: Image.open(path).convert(MODES[channels]),
        )  # fmt: skip
    except (FileNotFoundError, OSError) as error:
        raise TestSetError(f"{root}: {error}") from None
    images = [image for image, _ in folder]
    sizes = {tuple(image.shape) for image in images}
    if len(sizes) > 1:
        raise TestSetError(
            f"{root}: images of {len(sizes)} shapes (e.g. {sorted(sizes)[:2]}); give an image"
            " size to resize and centre-crop them to"
        )
    labels = torch.tensor(folder.targets)
    return split(torch.stack(images), labels, folder.classes)


def split(images: torch.Tensor, labels: torch.Tensor, names: list[str] | None = None) -> dict:
    """The prepared-split layout; labels renumbered 0..C-1 in sorted order of the originals.
    `names`: class names indexed by the original labels (None: the labels as text)."""
    if len(images) < 2 or labels.unique().numel() < 2:
        raise TestSetError(f"{len(images)} images of {labels.unique().numel()} classes: too few")
    renumbered, originals = contiguous_labels(labels)
    return {
        "images": images.contiguous(),
        "labels": renumbered,
        "class_names": [names[i] if names else str(i) for i in originals.tolist()],
        "meta": {"source": "robdml.evaluate"},
    }
