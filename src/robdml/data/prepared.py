"""The prepared-split file every later step reads: uint8 images, contiguous labels, class names."""

from pathlib import Path

import torch

from robdml.io import torch_load, torch_save

SPLIT_FORMAT = "robdml-split/1"


class SplitError(ValueError):
    """A class split that leaves one side empty."""


def train_class_count(n_train_classes: int | None, n_classes: int) -> int:
    """`n_train_classes` (None: half), checked to leave classes on both sides of the split."""
    count = n_classes // 2 if n_train_classes is None else n_train_classes
    if not 1 <= count < n_classes:
        raise SplitError(
            f"n_train_classes: {n_train_classes} leaves no "
            f"{'training' if count < 1 else 'test'} classes ({n_classes} classes found); "
            f"set it between 1 and {n_classes - 1} in the dataset's config entry"
        )
    return count


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
    return torch_load(path, "prepared split", rebuild_data(path), (SPLIT_FORMAT,))


def rebuild_data(path: str | Path) -> str:
    """How to remake a prepared split or image index (for an UnreadableFileError)."""
    return f"rule prepare_data writes it; rebuild it: snakemake --forcerun {path}"
