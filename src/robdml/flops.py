"""FLOPs of one forward pass of one image through an embedding model, the model robdml.models
builds, counted by torch's FlopCounterMode on the meta device (no weights, memory or arithmetic:
about a second for ResNet-50). The expected cost of robdml.resources multiplies it by the
passes its cost model counts (docs/cluster.md "Resources").

Convention: FlopCounterMode's, 2 FLOPs per multiply-accumulate of the convolutions and matrix
products; element-wise work (batch norm, ReLU, pooling, normalisation) counts nothing. ResNet-50
at 224 px: 8.18 GFLOP (4.09 G multiply-accumulates), GoogLeNet 3.00, the 512-d head included.
"""

from functools import cache

import torch
from torch.utils.flop_counter import FlopCounterMode

from robdml.models import EmbeddingModel


def forward_flops(backbone: dict, dataset: dict) -> float:
    """FLOPs of one image's forward pass through a model of `backbone` (a `backbones` entry) on
    images of `dataset` (a `datasets` entry): counted once per architecture and input size."""
    return counted_forward_flops(
        backbone["arch"],
        tuple(backbone["widths"]),
        backbone["embedding_dim"],
        dataset["channels"],
        dataset["image_size"],
    )


@cache
def counted_forward_flops(
    arch: str, widths: tuple[int, ...], embedding_dim: int, channels: int, image_size: int
) -> float:
    """The count behind `forward_flops`, from what sizes the model (a random init: the weights
    change no FLOP; the normalisation constants none either)."""
    backbone = {"arch": arch, "widths": list(widths), "embedding_dim": embedding_dim}
    dataset = {"channels": channels, "image_size": image_size}
    dataset |= {"mean": [0.0] * channels, "std": [1.0] * channels}
    with torch.device("meta"):
        model = EmbeddingModel({**backbone, "weights": None}, dataset)
        image = torch.zeros(1, channels, image_size, image_size)
    with FlopCounterMode(display=False) as counter:
        model(image)
    return float(counter.get_total_flops())
