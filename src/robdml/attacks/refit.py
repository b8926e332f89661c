"""`refit` (label-free): `multi_target`, re-aimed every `refit_every` steps at the attacker's
k-means of the current adversarial embeddings.

After each round the members of every clean cluster are spread again over the clusters nearest
to the adversarial cluster they are in now, so a group that re-clustering would find together
again is broken up again. The runner keeps the round whose clustering agrees least (NMI) with
the clean clustering: a choice the label-free attacker can make without the labels."""

from robdml.attacks.base import Attack, Context
from robdml.attacks.centroids import kmeans_centroids, margin, spread_targets


class RefitAttack(Attack):
    def context(self, clean, labels, seed):
        n_clusters = int(labels.unique().numel())
        own, centroids = kmeans_centroids(clean, n_clusters, seed, self.params["kmeans_n_init"])
        return self.aim(Context({"reference": own}), clean, own, centroids)

    def refit(self, context, embeddings, assignments, centroids):
        return self.aim(context, embeddings, assignments, centroids)

    def aim(self, context, embeddings, assignments, centroids):
        groups = context.samples["reference"]
        target = spread_targets(
            embeddings, assignments, groups, centroids, self.params["n_targets"]
        )
        samples = {"reference": groups, "own": centroids[assignments], "target": centroids[target]}
        return Context(samples)

    def objective(self, embeddings, context):
        return margin(embeddings, context.samples["own"], context.samples["target"])
