"""ADP, adaptive diversity promoting (Pang et al., "Improving Adversarial Robustness via
Promoting Ensemble Diversity", ICML 2019) adapted to DML: each member's Proxy Anchor loss,
minus alpha x the entropy of the ensemble's mean proxy-softmax distribution, minus beta x the
log-determinant of the Gram matrix of the members' normalised non-true-class predictions
(the volume they span: large when the members disagree on the wrong classes)."""

import math

import torch
import torch.nn.functional as F

from robdml.defenses.base import Defense, proxy_log_probabilities


def ensemble_entropy(log_probabilities: list[torch.Tensor]) -> torch.Tensor:
    """Mean over samples of the entropy of the members' average distribution."""
    stacked = torch.stack(log_probabilities)
    log_mean = torch.logsumexp(stacked, dim=0) - math.log(len(log_probabilities))
    return -(log_mean.exp() * log_mean).sum(dim=1).mean()


def ensemble_diversity(
    log_probabilities: list[torch.Tensor], labels: torch.Tensor, det_offset: float
) -> torch.Tensor:
    """Mean over samples of log det(G + det_offset I), G the members' Gram matrix of their
    L2-normalised predictions with the true class removed."""
    probabilities = torch.stack(log_probabilities, dim=1).exp()  # [N, members, classes]
    wrong = F.one_hot(labels, probabilities.shape[2]).logical_not()
    non_true = probabilities[wrong[:, None, :].expand_as(probabilities)]
    non_true = F.normalize(non_true.view(*probabilities.shape[:2], -1), dim=2)
    gram = non_true @ non_true.transpose(1, 2)
    identity = torch.eye(gram.shape[1], dtype=gram.dtype, device=gram.device)
    return torch.logdet(gram + det_offset * identity).mean()


class ADP(Defense):
    def loss(self, step, images, labels, mask):
        scale = self.params["softmax_scale"]
        total, log_probabilities = 0, []
        for member, pal in zip(step.members, step.pal_losses, strict=True):
            embeddings = member(images)
            total = total + pal(embeddings, labels)
            log_probabilities.append(proxy_log_probabilities(embeddings, pal, scale))
        entropy = ensemble_entropy(log_probabilities)
        diversity = ensemble_diversity(log_probabilities, labels, self.params["det_offset"])
        return (
            total
            - self.params["entropy_weight"] * entropy
            - self.params["logdet_weight"] * diversity
        )
