"""Shared by the clustering attacks: centroids of the clean test embeddings, and the margin
objective that pushes an embedding from its own centroid toward a target centroid."""

import numpy as np
import torch
import torch.nn.functional as F

from robdml.metrics import kmeans_assign


def kmeans_centroids(
    clean: torch.Tensor, n_clusters: int, seed: int, n_init: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(assignment [N], unit-norm centroids [k, D]) of seeded k-means on the clean embeddings."""
    assignments, centroids = kmeans_assign(clean.numpy(), n_clusters, seed, n_init)
    return torch.from_numpy(assignments), F.normalize(torch.from_numpy(centroids), dim=1)


def class_means(clean: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Unit-norm mean embedding of every class (the oracle's centroids)."""
    n_classes = int(labels.max()) + 1
    sums = torch.zeros(n_classes, clean.shape[1]).index_add_(0, labels, clean)
    return F.normalize(sums, dim=1)


def nearest_other(clean: torch.Tensor, own: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """Index of the centroid closest to each embedding, its own centroid excluded."""
    similarity = clean @ centroids.T
    similarity[torch.arange(len(own)), own] = -torch.inf
    return similarity.argmax(dim=1)


def random_other(own: torch.Tensor, n_centroids: int, seed: int) -> torch.Tensor:
    """A uniformly random centroid index different from each sample's own (seeded)."""
    rng = np.random.default_rng(seed)
    offsets = torch.from_numpy(rng.integers(1, n_centroids, size=len(own)))
    return (own + offsets) % n_centroids


def margin(embeddings: torch.Tensor, own: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """cos(embedding, target centroid) - cos(embedding, own centroid), per sample."""
    return (embeddings * (target - own)).sum(dim=1)
