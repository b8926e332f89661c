"""What a defense is: a training step's loss given the members, their Proxy Anchor losses and
a batch. The loop around it (epochs, optimiser, schedule, checkpoints) is `robdml.training`."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from robdml.attacks.pgd import pgd
from robdml.data.batches import RANDOM
from robdml.threat_model import radius


@contextmanager
def eval_mode(modules: list[nn.Module]) -> Iterator[None]:
    """BatchNorm in eval mode while crafting adversarial examples; the update runs in train mode."""
    saved = [(sub, sub.training) for module in modules for sub in module.modules()]
    for module in modules:
        module.eval()
    try:
        yield
    finally:  # restore each submodule, so BatchNorm layers frozen by the recipe stay frozen
        for sub, training in saved:
            sub.training = training


@dataclass
class StepContext:
    """Everything a defense may use in one step."""

    members: list[nn.Module]
    pal_losses: list[nn.Module]
    generator: torch.Generator
    seed: int = 0  # the run's seed, this epoch (from 0) and the number of epochs: for
    epoch: int = 0  # choices made once per epoch and schedules over the run (DVERGE, TRS)
    epochs: int = 1

    def craft(
        self, objective: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, attack: dict
    ) -> torch.Tensor:
        """Training-time PGD (random start) with `attack` = {eps_255, steps, step_fraction}."""
        ball = radius(attack["eps_255"])
        with eval_mode(self.members):
            return pgd(
                objective, images, ball, ball * attack["step_fraction"], attack["steps"],
                self.generator,
            )  # fmt: skip


class Defense:
    """Base class: single model, every member sees every sample. Subclasses override `loss`."""

    def __init__(self, params: dict):
        self.params = params

    @property
    def n_members(self) -> int:
        return self.params.get("members", 1)

    @property
    def batches(self) -> str:
        """How the trainer samples this defense's batches (robdml.data.batches); a defense
        whose config does not name it gets random ones."""
        return self.params.get("batches", RANDOM)

    def member_masks(self, labels: torch.Tensor, seed: int) -> torch.Tensor:
        """Bool [N, members]: which training samples each member may learn from."""
        return torch.ones(len(labels), self.n_members, dtype=torch.bool)

    def loss(
        self, step: StepContext, images: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        raise NotImplementedError


def proxy_log_probabilities(embeddings: torch.Tensor, pal: nn.Module, scale: float) -> torch.Tensor:
    """Log-softmax over classes of `scale` x cosine similarity to the member's proxies: the
    class distribution that classification defenses (TRADES, MART, ADP) need and DML lacks."""
    proxies = F.normalize(pal.proxies, dim=1)
    return F.log_softmax(scale * embeddings @ proxies.T, dim=1)


def kl_divergence(log_p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """Per-sample KL(p || q) from log-probabilities [N, classes]."""
    return (log_p.exp() * (log_p - log_q)).sum(dim=1)


def input_gradients(
    step: StepContext, images: torch.Tensor, labels: torch.Tensor
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """(each member's Proxy Anchor loss, its input gradient flattened to [N, pixels]); the
    gradients keep their graph, so penalties on them (GAL, TRS) train the members."""
    inputs = images.detach().requires_grad_(True)
    losses, gradients = [], []
    for member, pal in zip(step.members, step.pal_losses, strict=True):
        loss = pal(member(inputs), labels)
        (gradient,) = torch.autograd.grad(loss, inputs, create_graph=True)
        losses.append(loss)
        gradients.append(gradient.flatten(start_dim=1))
    return losses, gradients


def pairwise_cosines(gradients: list[torch.Tensor]) -> torch.Tensor:
    """Per-sample cosine similarity of every pair of members' gradients: [N, pairs]."""
    pairs = [
        F.cosine_similarity(gradients[a], gradients[b], dim=1)
        for a in range(len(gradients))
        for b in range(a + 1, len(gradients))
    ]
    return torch.stack(pairs, dim=1)
