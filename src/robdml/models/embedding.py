"""The model interface every defense, attack and metric relies on: images in [0, 1] in,
L2-normalised embeddings out. Normalisation happens inside `forward`, so attack budgets
(eps) live in pixel space."""

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from robdml.models.backbones import build_trunk

# ImageNet-pretrained trunks expect RGB input; grey images are repeated to 3 channels.
RGB_ARCHS = ("resnet18", "resnet50", "googlenet")


class EmbeddingModel(nn.Module):
    """trunk -> linear head -> L2 normalisation. A backbone with ImageNet `weights` reads
    them from `weights_file` (robdml.models.weights)."""

    def __init__(self, backbone: dict, dataset: dict, weights_file: str | Path | None = None):
        super().__init__()
        channels = dataset["channels"]
        self.repeat_to_rgb = backbone["arch"] in RGB_ARCHS and channels == 1
        trunk_channels = 3 if self.repeat_to_rgb else channels
        mean = torch.tensor(dataset["mean"] * (3 if self.repeat_to_rgb else 1))
        std = torch.tensor(dataset["std"] * (3 if self.repeat_to_rgb else 1))
        self.register_buffer("mean", mean.view(1, -1, 1, 1))
        self.register_buffer("std", std.view(1, -1, 1, 1))
        self.trunk, feature_dim = build_trunk(
            backbone, trunk_channels, dataset["image_size"], weights_file
        )
        self.head = nn.Linear(feature_dim, backbone["embedding_dim"])

    def init_head(self, generator: torch.Generator) -> None:
        """Kaiming-normal weights (fan-out) and zero bias, as the Proxy Anchor code initialises
        its embedding layer."""
        nn.init.kaiming_normal_(self.head.weight, mode="fan_out", generator=generator)
        nn.init.zeros_(self.head.bias)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.repeat_to_rgb:
            images = images.expand(-1, 3, -1, -1)
        features = self.trunk((images - self.mean) / self.std)
        # fp32 under the GPU fast path's bf16 autocast too: losses and objectives read it
        return F.normalize(self.head(features).float(), dim=1)


class Ensemble(nn.Module):
    """Mean of the members' normalised embeddings, renormalised: an ensemble is a model too."""

    def __init__(self, members: list[nn.Module]):
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        stacked = torch.stack([member(images) for member in self.members])
        return F.normalize(stacked.mean(dim=0), dim=1)
