"""`random_target`: push each embedding toward a randomly chosen other clean k-means centroid.

Pushing every point to its *nearest* other centroid (`centroid`) moves same-class points
together, so re-clustering finds them again; random targets scatter them and reach chance
NMI at large eps, while being weaker at small eps."""

from robdml.attacks.base import Attack, Context
from robdml.attacks.centroids import kmeans_centroids, margin, random_other


class RandomTargetAttack(Attack):
    def context(self, clean, labels, seed):
        n_clusters = int(labels.unique().numel())
        own, centroids = kmeans_centroids(clean, n_clusters, seed, self.params["kmeans_n_init"])
        target = random_other(own, n_clusters, seed)
        return Context({"own": centroids[own], "target": centroids[target]})

    def objective(self, embeddings, context):
        return margin(embeddings, context.samples["own"], context.samples["target"])
