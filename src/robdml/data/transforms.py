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
    `imagenet_crop_flip`: the Proxy Anchor recipe, RandomResizedCrop(image_size) + flip.
    """
    kind = dataset["train_transform"]
    if kind == "none":
        return None
    if kind == "imagenet_crop_flip":
        from torchvision.transforms import v2  # torchvision adds ~1.5 s to every job importing it

        return v2.Compose(
            [
                v2.RandomResizedCrop(dataset["image_size"], antialias=True),
                v2.RandomHorizontalFlip(),
                v2.ToDtype(torch.float32, scale=True),
            ]
        )
    raise ValueError(f"unknown train_transform {kind!r}")


def resize_center_crop(resize_size: int, crop_size: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """The Proxy Anchor test transform on a uint8 image: shorter side to `resize_size`, then the
    central `crop_size` square (uint8 out: it is applied once, when the test set is prepared)."""
    from torchvision.transforms import v2

    return v2.Compose([v2.Resize(resize_size, antialias=True), v2.CenterCrop(crop_size)])
