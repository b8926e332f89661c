"""`oracle`: like `centroid`, but with the true class means of the clean embeddings: a
label-aware attacker (it knows the test labels), an upper bound on the label-free ones."""

from robdml.attacks.base import Attack, Context
from robdml.attacks.centroids import class_means, margin, nearest_other


class OracleAttack(Attack):
    def context(self, clean, labels, seed):
        centroids = class_means(clean, labels)
        target = nearest_other(clean, labels, centroids)
        return Context({"own": centroids[labels], "target": centroids[target]})

    def objective(self, embeddings, context):
        return margin(embeddings, context.samples["own"], context.samples["target"])
