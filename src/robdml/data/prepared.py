"""The prepared-split file every later step reads: uint8 images, contiguous labels, class names."""

from pathlib import Path

import torch

from robdml.io import torch_save

SPLIT_FORMAT = "robdml-split/1"


def contiguous_labels(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(labels renumbered 0..C-1 in ascending order of the originals, the originals per new id)."""
    originals, renumbered = torch.unique(labels, sorted=True, return_inverse=True)
    return renumbered, originals


def save_split(
    path: str | Path, images: torch.Tensor, labels: torch.Tensor, class_names: list[str], meta: dict
) -> None:
    """Write one split atomically; labels are renumbered to 0..C-1 (Proxy Anchor needs that)."""
    renumbered, originals = contiguous_labels(labels)
    torch_save(
        path,
        {
            "format": SPLIT_FORMAT,
            "images": images.contiguous(),
            "labels": renumbered,
            "class_names": [class_names[i] for i in originals.tolist()],
            "meta": meta,
        },
    )


def load_split(path: str | Path) -> dict:
    """{'images': uint8 [N,C,H,W], 'labels': int64 [N], 'class_names': [...], 'meta': {...}}."""
    split = torch.load(path, map_location="cpu", weights_only=False)
    if split.get("format") != SPLIT_FORMAT:
        raise ValueError(f"{path} is not a prepared split ({SPLIT_FORMAT}); rerun prepare_data")
    return split
