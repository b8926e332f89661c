"""Training sets as torch Datasets keyed by (index, sample_seed): the per-sample seed makes
random augmentation reproducible whatever the number of loader workers."""

from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.data import Dataset

from robdml.data.image_files import load_index, read_rgb
from robdml.data.prepared import load_split
from robdml.data.sources import IMAGE_SOURCES
from robdml.data.transforms import to_unit_range, train_augmentation


class InMemoryImages(Dataset):
    """uint8 images held in memory (the glyphs, or any prepared tensor split)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, augment: Callable | None):
        self.images, self.labels, self.augment = images, labels, augment

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        index, sample_seed = key
        if self.augment is None:
            return to_unit_range(self.images[index]), self.labels[index]
        torch.manual_seed(sample_seed)  # torchvision transforms draw from the global RNG
        return self.augment(self.images[index]), self.labels[index]


class ImageFiles(Dataset):
    """JPEG files decoded on access, in the loader workers: decoded at full size, the training
    sets of CUB-200-2011, CARS196, In-Shop and SOP would not fit in memory."""

    def __init__(self, paths: list[Path], labels: torch.Tensor, augment: Callable | None):
        if augment is None:
            raise ValueError(
                "JPEG images differ in size: their train_transform must crop (imagenet_crop_flip)"
            )
        self.paths, self.labels, self.augment = paths, labels, augment

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        index, sample_seed = key
        image = read_rgb(self.paths[index])
        torch.manual_seed(sample_seed)
        return self.augment(image), self.labels[index]


def load_training_set(path: str | Path, dataset: dict) -> Dataset:
    """The training set prepared at `path`, with the dataset's training transform.

    Every training set exposes `.labels` (int64, 0..C-1) for the sampler and the defenses.
    """
    augment = train_augmentation(dataset)
    if dataset["source"] in IMAGE_SOURCES:
        index = load_index(path)
        return ImageFiles(index["paths"], index["labels"], augment)
    split = load_split(path)
    return InMemoryImages(split["images"], split["labels"], augment)
