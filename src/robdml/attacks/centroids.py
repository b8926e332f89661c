"""Shared by the clustering attacks: the attacker's k-means, class means, target choices and
the margin objective that pushes an embedding from its own centroid toward a target centroid."""

import numpy as np
import torch
import torch.nn.functional as F

from robdml.metrics import kmeans_assign


def kmeans_centroids(
    embeddings: torch.Tensor, n_clusters: int, seed: int, n_init: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(assignment [N], unit-norm centroids [k, D]) of seeded k-means on the embeddings."""
    assignments, centroids = kmeans_assign(embeddings.numpy(), n_clusters, seed, n_init)
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


def spread_targets(
    embeddings: torch.Tensor,
    own: torch.Tensor,
    groups: torch.Tensor,
    centroids: torch.Tensor,
    n_targets: int,
) -> torch.Tensor:
    """A target centroid per sample that spreads every group over several clusters.

    Each sample's candidates are the `n_targets` centroids nearest to its own centroid (own
    excluded); within a group (a clean cluster), the members are ranked by how close they
    already are to the first candidate and dealt out over the candidates in turn, so no single
    neighbour receives a whole group and re-clustering cannot find it together again.
    """
    similarity = centroids @ centroids.T
    similarity.fill_diagonal_(-torch.inf)
    n_targets = min(n_targets, len(centroids) - 1)
    candidates = similarity.topk(n_targets, dim=1).indices[own]  # [N, n_targets]
    closeness = (embeddings * centroids[candidates[:, 0]]).sum(dim=1)
    return candidates.gather(1, (rank_within(groups, -closeness) % n_targets)[:, None])[:, 0]


def rank_within(groups: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """Rank (0, 1, ...) of each sample by ascending `keys` among the samples of its group."""
    n = len(groups)
    by_key = torch.empty(n, dtype=torch.long)
    by_key[torch.argsort(keys, stable=True)] = torch.arange(n)
    order = torch.argsort(groups.long() * n + by_key)
    _, counts = torch.unique_consecutive(groups[order], return_counts=True)
    starts = torch.repeat_interleave(counts.cumsum(0) - counts, counts)
    ranks = torch.empty(n, dtype=torch.long)
    ranks[order] = torch.arange(n) - starts
    return ranks


def margin(embeddings: torch.Tensor, own: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """cos(embedding, target centroid) - cos(embedding, own centroid), per sample."""
    return (embeddings * (target - own)).sum(dim=1)
