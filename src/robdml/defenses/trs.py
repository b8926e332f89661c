"""TRS, transferability reduced smooth ensemble (Yang et al., "TRS: Transferability Reduced
Ensemble via Promoting Gradient Diversity and Model Smoothness", NeurIPS 2021): each member's
Proxy Anchor loss + lambda_a x the mean absolute cosine of the members' input gradients
(orthogonal gradients: an attack on one member transfers poorly) + lambda_b x each member's
squared input-gradient norm (smooth members: the small gradients keep orthogonality
meaningful in a neighbourhood). As in the TRS code, both terms are taken at the clean input."""

import torch

from robdml.defenses.base import Defense, input_gradients, pairwise_cosines


def gradient_similarity(gradients: list[torch.Tensor]) -> torch.Tensor:
    """Mean over samples and member pairs of |cosine|: 1 for aligned or opposite gradients,
    0 for orthogonal ones."""
    return pairwise_cosines(gradients).abs().mean()


def gradient_magnitude(gradients: list[torch.Tensor]) -> torch.Tensor:
    """Sum over members of the mean squared input-gradient norm."""
    return sum(gradient.pow(2).sum(dim=1).mean() for gradient in gradients)


class TRS(Defense):
    def loss(self, step, images, labels, mask):
        losses, gradients = input_gradients(step, images, labels)
        return (
            sum(losses)
            + self.params["alignment_weight"] * gradient_similarity(gradients)
            + self.params["smoothness_weight"] * gradient_magnitude(gradients)
        )
