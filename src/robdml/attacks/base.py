"""What an evaluation attack is: a per-sample objective on the adversarial embedding, given a
context computed once from the clean test embeddings. `robdml.attacks.runner` drives PGD."""

import torch


class Attack:
    """Subclasses set `context` (per-sample tensors from clean embeddings) and `objective`."""

    def __init__(self, params: dict):
        self.params = params

    def context(
        self, clean: torch.Tensor, labels: torch.Tensor, seed: int
    ) -> dict[str, torch.Tensor]:
        """Per-sample tensors (first dimension N) the objective needs; computed once."""
        return {"clean": clean}

    def objective(self, embeddings: torch.Tensor, context: dict[str, torch.Tensor]) -> torch.Tensor:
        """Per-sample value to maximise; `context` is sliced to the batch."""
        raise NotImplementedError
