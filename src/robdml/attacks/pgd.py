"""The L-inf PGD core shared by training-time defenses and evaluation attacks: sign-gradient
ascent on an objective, projected onto the eps ball around the clean images and onto [0, 1]."""

from collections.abc import Callable

import torch


def project(adversarial: torch.Tensor, clean: torch.Tensor, eps: float) -> torch.Tensor:
    """Closest point to `adversarial` inside the L-inf eps ball around `clean` and inside [0, 1]."""
    return torch.clamp(torch.min(torch.max(adversarial, clean - eps), clean + eps), 0.0, 1.0)


def random_start(clean: torch.Tensor, eps: float, generator: torch.Generator) -> torch.Tensor:
    """Uniform noise in the eps ball (drawn on the CPU generator, so runs are reproducible)."""
    noise = torch.rand(clean.shape, generator=generator, dtype=clean.dtype) * 2 - 1
    return project(clean + eps * noise.to(clean.device), clean, eps)


def pgd(
    objective: Callable[[torch.Tensor], torch.Tensor],
    clean: torch.Tensor,
    eps: float,
    step_size: float,
    steps: int,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """Maximise `objective(x).sum()` over the eps ball; random start when a generator is given.

    Only the input gradient is taken (`autograd.grad`), so model weights get no `.grad`.
    """
    if eps == 0 or steps == 0:
        return clean.detach().clone()
    clean = clean.detach()
    adversarial = clean.clone() if generator is None else random_start(clean, eps, generator)
    for _ in range(steps):
        adversarial.requires_grad_(True)
        (gradient,) = torch.autograd.grad(objective(adversarial).sum(), adversarial)
        adversarial = project(adversarial.detach() + step_size * gradient.sign(), clean, eps)
    return adversarial.detach()
