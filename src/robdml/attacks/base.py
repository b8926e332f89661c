"""What an evaluation attack is: a per-sample objective on the adversarial embedding, given a
context computed from the clean test embeddings. `robdml.attacks.runner` drives the PGD core.

Static attacks compute their context once. Re-fitting attacks (their params have `refit_every`)
run in rounds of `refit_every` steps: after each round the runner embeds the whole adversarial
test set, re-runs the attacker's k-means on it and asks the attack for a new context, and it
keeps the round whose clustering agrees least with the attack's `reference` (the clean
clustering for a label-free attacker, the true labels for a label-aware one).
"""

from dataclasses import dataclass, field

import torch

from robdml.threat_model import reads_true_labels, refits


@dataclass
class Context:
    """What the objective needs: `samples` (first dimension N, sliced to the batch) and
    `shared` (whole tensors, e.g. centroids, used by every batch)."""

    samples: dict[str, torch.Tensor]
    shared: dict[str, torch.Tensor] = field(default_factory=dict)

    def batch(self, index: torch.Tensor, device) -> "Context":
        return Context(
            {key: value[index].to(device) for key, value in self.samples.items()},
            {key: value.to(device) for key, value in self.shared.items()},
        )


class Attack:
    """Subclasses implement `context` and `objective`; re-fitting ones also `refit`."""

    def __init__(self, params: dict):
        self.params = params

    @property
    def uses_labels(self) -> bool:
        """True for a label-aware attacker (it reads the true test labels)."""
        return reads_true_labels(self.params)

    @property
    def refits(self) -> bool:
        """True for a re-fitting attack (the runner calls `refit` between rounds)."""
        return refits(self.params)

    def context(self, clean: torch.Tensor, labels: torch.Tensor, seed: int) -> Context:
        """The context of the first round, from the clean embeddings."""
        return Context({"clean": clean})

    def refit(
        self,
        context: Context,
        embeddings: torch.Tensor,
        assignments: torch.Tensor,
        centroids: torch.Tensor,
    ) -> Context:
        """The next round's context from the attacker's k-means of the adversarial set."""
        return context

    def objective(self, embeddings: torch.Tensor, context: Context) -> torch.Tensor:
        """Per-sample value to maximise; `context` is sliced to the batch."""
        raise NotImplementedError
