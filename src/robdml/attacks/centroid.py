"""`centroid`: our clustering attack. k-means on the clean test embeddings (k = number of
test classes, seeded); push each embedding out of its cluster toward the nearest other centroid."""

from robdml.attacks.base import Attack
from robdml.attacks.centroids import kmeans_centroids, margin, nearest_other


class CentroidAttack(Attack):
    def context(self, clean, labels, seed):
        n_clusters = int(labels.unique().numel())
        own, centroids = kmeans_centroids(clean, n_clusters, seed, self.params["kmeans_n_init"])
        target = nearest_other(clean, own, centroids)
        return {"own": centroids[own], "target": centroids[target]}

    def objective(self, embeddings, context):
        return margin(embeddings, context["own"], context["target"])
