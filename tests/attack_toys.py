"""Toy problems of the attack tests, whose geometry makes each attack's effect predictable, and
the methods' demo defaults with short runs."""

import math

import torch
import torch.nn.functional as F
from torch import nn

from conftest import REPO
from robdml.config import read_config

# The attack methods as defined, with the short runs the glyph demos used before configs became
# overlays (10 sign steps, `refit` 30): on these toys 20 steps leave restarts nothing to find.
SHORT_STEPS = {"centroid": 10, "random_target": 10, "multi_target": 10, "es": 10, "oracle": 10,
               "refit": 30}  # fmt: skip


DEMO_METHODS = {
    name: {**method, "steps": SHORT_STEPS.get(name, method["steps"])}
    for name, method in read_config(REPO / "config/demo.yaml")["attack_methods"].items()
}


def params_for(method: str, **overrides) -> dict:
    """The quick demo's defaults of a method (every method has them there)."""
    return {"method": method, **DEMO_METHODS[method], **overrides}


class PixelModel(nn.Module):
    """Embedding = direction of the pixels around 0.5: a toy with exact geometry."""

    def forward(self, images):
        return F.normalize(images.flatten(1) - 0.5, dim=1)


def ring_of_clusters(n_classes=12, per_class=10, radius=0.3, spread=0.01, seed=0):
    """Two-pixel images whose embeddings form `n_classes` tight clusters on a circle; adjacent
    clusters are 2 r sin(pi / n) = 0.155 apart, so an L-inf eps of 0.08 can cross halfway."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(n_classes).repeat_interleave(per_class)
    angles = 2 * math.pi * labels / n_classes
    points = radius * torch.stack([angles.cos(), angles.sin()], dim=1) + 0.5
    points += spread * torch.randn(points.shape, generator=generator)
    return points.view(-1, 1, 1, 2).clamp(0, 1), labels


def tight_clusters(n_classes=8, per_class=12, dim=8, radius=0.3, spread=0.005, seed=0):
    """Tight clusters in random directions of an 8-pixel space: moving a whole cluster toward
    its nearest neighbour leaves it together, so `centroid` cannot lower NMI here."""
    generator = torch.Generator().manual_seed(seed)
    directions = F.normalize(torch.randn(n_classes, dim, generator=generator), dim=1)
    labels = torch.arange(n_classes).repeat_interleave(per_class)
    points = 0.5 + radius * directions[labels]
    points += spread * torch.randn(len(labels), dim, generator=generator)
    return points.view(-1, 1, 1, dim).clamp(0, 1), labels
