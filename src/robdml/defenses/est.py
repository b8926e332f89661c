"""EST, embedding-shifted adversarial training (Zhou et al., "Adversarial Ranking Attack and
Defense", ECCV 2020; the `est` defense of RobRank): train the Proxy Anchor loss on examples
that move each embedding as far as possible from its clean position. The adversary needs no
labels, so it attacks the geometry that retrieval and clustering rely on."""

import torch

from robdml.defenses.base import Defense, eval_mode


class EmbeddingShiftTraining(Defense):
    def loss(self, step, images, labels, mask):
        member, pal = step.members[0], step.pal_losses[0]
        with eval_mode([member]), torch.no_grad():
            clean = member(images)
        adversarial = step.craft(
            lambda x: (member(x) - clean).pow(2).sum(dim=1), images, self.params["attack"]
        )
        return pal(member(adversarial), labels)
