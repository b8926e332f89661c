"""`centroid`: push each embedding out of its clean k-means cluster (k = number of test
classes, the attacker's own seed) toward the nearest other centroid."""

from robdml.attacks.base import Attack, Context
from robdml.attacks.centroids import kmeans_centroids, margin, nearest_other


class CentroidAttack(Attack):
    def context(self, clean, labels, seed):
        n_clusters = int(labels.unique().numel())
        own, centroids = kmeans_centroids(clean, n_clusters, seed, self.params["kmeans_n_init"])
        target = nearest_other(clean, own, centroids)
        return Context({"own": centroids[own], "target": centroids[target]})

    def objective(self, embeddings, context):
        return margin(embeddings, context.samples["own"], context.samples["target"])
