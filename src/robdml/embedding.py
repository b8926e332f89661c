"""Embedding a whole image set in batches, without gradients."""

import torch
from torch import nn


@torch.no_grad()
def embed(
    model: nn.Module, images: torch.Tensor, batch_size: int, device: torch.device
) -> torch.Tensor:
    """Embeddings [N, D] on the CPU of float images in [0, 1] (model in eval mode)."""
    model.eval()
    chunks = [model(chunk.to(device)).cpu() for chunk in images.split(batch_size)]
    return torch.cat(chunks)
