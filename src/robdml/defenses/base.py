"""What a defense is: a training step's loss given the members, their Proxy Anchor losses and
a batch. The loop around it (epochs, optimiser, schedule, checkpoints) is `robdml.training`."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from robdml.attacks.pgd import pgd


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

    def craft(
        self, objective: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, attack: dict
    ) -> torch.Tensor:
        """Training-time PGD (random start) with `attack` = {eps_255, steps, step_fraction}."""
        eps = attack["eps_255"] / 255
        with eval_mode(self.members):
            return pgd(
                objective, images, eps, eps * attack["step_fraction"], attack["steps"],
                self.generator,
            )  # fmt: skip


class Defense:
    """Base class: single model, every member sees every sample. Subclasses override `loss`."""

    def __init__(self, params: dict):
        self.params = params

    @property
    def n_members(self) -> int:
        return self.params.get("members", 1)

    def member_masks(self, labels: torch.Tensor, seed: int) -> torch.Tensor:
        """Bool [N, members]: which training samples each member may learn from."""
        return torch.ones(len(labels), self.n_members, dtype=torch.bool)

    def loss(
        self, step: StepContext, images: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        raise NotImplementedError
