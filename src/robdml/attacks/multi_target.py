"""`multi_target` (label-free): every clean cluster is split over its `n_targets` nearest
other clusters, each member pushed toward one of them (dealt out in turn), so the members of a
cluster land in several different clusters instead of moving together as under `centroid`."""

from robdml.attacks.base import Attack, Context
from robdml.attacks.centroids import kmeans_centroids, margin, spread_targets


class MultiTargetAttack(Attack):
    def context(self, clean, labels, seed):
        n_clusters = int(labels.unique().numel())
        own, centroids = kmeans_centroids(clean, n_clusters, seed, self.params["kmeans_n_init"])
        target = spread_targets(clean, own, own, centroids, self.params["n_targets"])
        return Context({"own": centroids[own], "target": centroids[target]})

    def objective(self, embeddings, context):
        return margin(embeddings, context.samples["own"], context.samples["target"])
