"""Training sets as torch Datasets keyed by (index, sample_seed): the per-sample seed makes
random augmentation reproducible whatever the number of loader workers."""

from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.data import Dataset

from robdml.data.prepared import load_split
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


def load_training_set(path: str | Path, dataset: dict) -> Dataset:
    """The training set prepared at `path`, with the dataset's training transform.

    Every training set exposes `.labels` (int64, 0..C-1) for the sampler and the defenses.
    """
    split = load_split(path)
    return InMemoryImages(split["images"], split["labels"], train_augmentation(dataset))
