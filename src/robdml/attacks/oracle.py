"""`oracle`: like `centroid`, but with the true class means of the clean embeddings: an upper
bound for an attacker who knows the test labels."""

from robdml.attacks.base import Attack
from robdml.attacks.centroids import class_means, margin, nearest_other


class OracleAttack(Attack):
    def context(self, clean, labels, seed):
        centroids = class_means(clean, labels)
        target = nearest_other(clean, labels, centroids)
        return {"own": centroids[labels], "target": centroids[target]}

    def objective(self, embeddings, context):
        return margin(embeddings, context["own"], context["target"])
