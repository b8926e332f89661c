"""Mixup (Zhang et al., "mixup: Beyond Empirical Risk Minimization", ICLR 2018) for DML: the
batch is mixed with a shuffled copy of itself, x = lam x_a + (1 - lam) x_b with
lam ~ Beta(alpha, alpha) per batch, and the Proxy Anchor loss is mixed with the same lam:
lam PAL(f(x), y_a) + (1 - lam) PAL(f(x), y_b). The paper's v1 Figure 1 shows it under attack."""

import numpy as np
import torch

from robdml.defenses.base import Defense

SEED_RANGE = 2**62


class Mixup(Defense):
    def loss(self, step, images, labels, mask):
        member, pal = step.members[0], step.pal_losses[0]
        # torch draws Beta samples only from the global RNG: seed NumPy from the step generator
        seed = int(torch.randint(SEED_RANGE, (1,), generator=step.generator))
        lam = float(np.random.default_rng(seed).beta(self.params["alpha"], self.params["alpha"]))
        partner = torch.randperm(len(labels), generator=step.generator).to(labels.device)
        embeddings = member(lam * images + (1 - lam) * images[partner])
        return lam * pal(embeddings, labels) + (1 - lam) * pal(embeddings, labels[partner])
