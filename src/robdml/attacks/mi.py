"""`mi`: minimise a differentiable surrogate of the mutual information between the test
classes and the clustering.

Soft assignments q(c | x) = softmax(scale * cos(embedding, centroid c)) to the attacker's
k-means centroids, re-fitted on the adversarial embeddings every `refit_every` steps (the
shipped configs set `refit_every` = `steps`, i.e. keep the clean centroids: re-fitting was
weaker on the glyph models, docs/evaluation.md "Attacks: strength and cost (measured)"). With the
joint P(y, c) = mean over samples of [y_i = y] q(c | x_i), the derivative of MI(y; c) in q(c | x_i)
is log P(y_i, c) / P(c) / N, so each sample's objective (held fixed within a round, exact to
first order) is -sum_c q(c | x_i) log(P(y_i, c) / P(c)): leave the clusters where your class
is concentrated for those where it is absent.

`labels: true_classes` reads the true test labels (label-aware, the threat model of `oracle`);
`labels: clean_clustering` uses the attacker's clean k-means clusters in their place
(label-free). The runner keeps the round whose clustering has the lowest NMI with those labels.
"""

import torch
import torch.nn.functional as F

from robdml.attacks.base import Attack, Context
from robdml.attacks.centroids import kmeans_centroids

SMOOTHING = 1e-6  # keeps log P(y, c) finite where a class is absent from a cluster


class MutualInformationAttack(Attack):
    def context(self, clean, labels, seed):
        n_clusters = int(labels.unique().numel())
        own, centroids = kmeans_centroids(clean, n_clusters, seed, self.params["kmeans_n_init"])
        reference = labels if self.uses_labels else own
        return self.refit(Context({"reference": reference}), clean, own, centroids)

    def refit(self, context, embeddings, assignments, centroids):
        reference = context.samples["reference"]
        soft = self.soft_assignments(embeddings, centroids)
        joint = torch.zeros(int(reference.max()) + 1, len(centroids))
        joint.index_add_(0, reference, soft / len(soft))
        cluster = joint.sum(dim=0, keepdim=True)
        log_ratio = (joint + SMOOTHING).log() - (cluster + SMOOTHING).log()
        return Context({"reference": reference}, {"centroids": centroids, "log_ratio": log_ratio})

    def soft_assignments(self, embeddings, centroids):
        return F.softmax(self.params["scale"] * embeddings @ centroids.T, dim=1)

    def objective(self, embeddings, context):
        soft = self.soft_assignments(embeddings, context.shared["centroids"])
        return -(soft * context.shared["log_ratio"][context.samples["reference"]]).sum(dim=1)
