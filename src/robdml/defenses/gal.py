"""GAL, gradient alignment loss (Kariyappa and Qureshi, "Improving Adversarial Robustness of
Ensembles with Diversity Training", arXiv 1901.09981, 2019): each member's Proxy Anchor loss
+ lambda x log(sum over member pairs of exp(cosine of their input gradients)), per sample.
Misaligned gradients make an adversarial direction of one member useless against the others."""

import torch

from robdml.defenses.base import Defense, input_gradients, pairwise_cosines


def gradient_alignment_penalty(gradients: list[torch.Tensor]) -> torch.Tensor:
    """Mean over samples of logsumexp over pairs of gradient cosines: 1 + log(pairs) when
    every pair is aligned, -1 for two opposite gradients."""
    return torch.logsumexp(pairwise_cosines(gradients), dim=1).mean()


class GAL(Defense):
    def loss(self, step, images, labels, mask):
        losses, gradients = input_gradients(step, images, labels)
        penalty = gradient_alignment_penalty(gradients)
        return sum(losses) + self.params["alignment_weight"] * penalty
