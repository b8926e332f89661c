"""TRADES (Zhang et al., "Theoretically Principled Trade-off between Robustness and Accuracy",
ICML 2019) adapted to DML: clean Proxy Anchor loss + beta x divergence between the clean and
the adversarial embedding, the adversary maximising that divergence.

The divergence is `kl` (KL between proxy-softmax class distributions, the closest analogue
of TRADES' KL between classifier outputs) or `cosine` (1 - cosine similarity of the two
embeddings, needing no proxies)."""

import torch
import torch.nn.functional as F

from robdml.defenses.base import Defense, eval_mode, kl_divergence, proxy_log_probabilities


class TRADES(Defense):
    def divergence(self, pal, clean: torch.Tensor, adversarial: torch.Tensor) -> torch.Tensor:
        """Per-sample divergence between clean and adversarial embeddings."""
        if self.params["divergence"] == "cosine":
            return 1 - F.cosine_similarity(clean, adversarial, dim=1)
        scale = self.params["softmax_scale"]
        return kl_divergence(
            proxy_log_probabilities(clean, pal, scale),
            proxy_log_probabilities(adversarial, pal, scale),
        )

    def loss(self, step, images, labels, mask):
        member, pal = step.members[0], step.pal_losses[0]
        with eval_mode([member]), torch.no_grad():  # the adversary's fixed reference point
            reference = member(images)
        adversarial = step.craft(
            lambda x: self.divergence(pal, reference, member(x)), images, self.params["attack"]
        )
        clean = member(images)
        robust = self.divergence(pal, clean, member(adversarial)).mean()
        return pal(clean, labels) + self.params["beta"] * robust
