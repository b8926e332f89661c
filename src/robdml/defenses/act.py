"""ACT, anti-collapse adversarial training (Zhou et al., "Adversarial Attack and Defense in Deep
Ranking", T-PAMI 2024, arXiv 2106.03614; `pnp` in RobRank): the adversary perturbs a positive and
a negative sample so that their embeddings collapse onto each other, and training separates
them again.

Adapted to Proxy Anchor, whose proxies play the anchors: each sample is paired with a random
sample of another class in the batch (its negative); the adversary maximises the cosine
similarity of every pair, all pairs at once; the Proxy Anchor loss on the collapsed batch
pulls each embedding back to its own proxy, away from its negative."""

import torch

from robdml.defenses.base import Defense


class AntiCollapseTraining(Defense):
    def loss(self, step, images, labels, mask):
        member, pal = step.members[0], step.pal_losses[0]
        other_class = labels.cpu()[:, None] != labels.cpu()[None, :]
        negatives = torch.multinomial(other_class.float(), 1, generator=step.generator)
        negatives = negatives.squeeze(1).to(labels.device)

        def collapse(x: torch.Tensor) -> torch.Tensor:
            embeddings = member(x)
            return (embeddings * embeddings[negatives]).sum(dim=1)

        adversarial = step.craft(collapse, images, self.params["attack"])
        return pal(member(adversarial), labels)
