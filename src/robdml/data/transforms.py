"""Image transforms: uint8 tensors in, float images in [0, 1] out (the model normalises)."""

from collections.abc import Callable

import torch


def to_unit_range(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float32 [0, 1]."""
    return images.float().div_(255)


def train_augmentation(dataset: dict) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """The training-time augmentation named by `dataset['train_transform']` (uint8 image in,
    float image in [0, 1] out), or None for no augmentation. Random transforms draw from torch's
    global RNG, which the dataset seeds per sample.

    `none`: glyphs are centred renders, and a flip would turn b into d, so no augmentation.
    """
    kind = dataset["train_transform"]
    if kind == "none":
        return None
    raise ValueError(f"unknown train_transform {kind!r}")
