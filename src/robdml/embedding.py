"""Embedding a whole image set in batches, without gradients."""

import torch
from torch import nn

from robdml.data.transforms import to_unit_range


def as_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 images -> float in [0, 1]; float images unchanged."""
    return to_unit_range(images) if images.dtype == torch.uint8 else images


@torch.no_grad()
def embed(
    model: nn.Module, images: torch.Tensor, batch_size: int, device: torch.device
) -> torch.Tensor:
    """Embeddings [N, D] on the CPU of uint8 images or float images in [0, 1] (eval mode).

    uint8 images are converted per batch, so a 224 px test set never exists as floats at once.
    """
    model.eval()
    chunks = [model(as_float(chunk).to(device)).cpu() for chunk in images.split(batch_size)]
    return torch.cat(chunks)
