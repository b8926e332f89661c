"""The L-inf PGD core shared by training-time defenses and evaluation attacks: ascent on an
objective, projected onto the L-inf ball of a given radius around the clean images and onto
[0, 1] (radii in [0, 1] pixel units: `robdml.threat_model.radius(eps_255)`).

Two step rules: `sign` (Madry et al.: fixed step, sign of the gradient, last iterate) and `apgd`
(Croce & Hein, ICML 2020, "Reliable evaluation of adversarial robustness with an ensemble of
diverse parameter-free attacks": step 2 radius, momentum 0.75, step halving at checkpoints where
progress stalled, restart from the best point; returns the per-sample best iterate).

APGD follows the paper where its reference code (fra31/auto-attack, `autopgd_base.py`) differs:
checkpoints at the paper's fractions p_j rounded up (the code rounds each interval down:
int(0.22 n) steps, then 0.03 n fewer each time, at least int(0.06 n)); the first halving
condition strict (fewer than rho x interval improving steps; the code halves at <=); the
second (step kept and best value not risen since the last checkpoint) active from the first
checkpoint (the code's starts at the second).
"""

import math
from collections.abc import Callable

import torch

APGD_MOMENTUM = 0.75  # Croce & Hein's alpha
APGD_SUCCESS_RATE = 0.75  # their rho: halve the step when fewer steps than this improved


def project(adversarial: torch.Tensor, clean: torch.Tensor, radius: float) -> torch.Tensor:
    """Closest point to `adversarial` inside the L-inf ball of `radius` around `clean` and
    inside [0, 1]."""
    return torch.clamp(torch.min(torch.max(adversarial, clean - radius), clean + radius), 0.0, 1.0)


def random_start(clean: torch.Tensor, radius: float, generator: torch.Generator) -> torch.Tensor:
    """Uniform noise in the radius ball (drawn on the CPU generator, so runs are reproducible)."""
    noise = torch.rand(clean.shape, generator=generator, dtype=clean.dtype) * 2 - 1
    return project(clean + radius * noise.to(clean.device), clean, radius)


def pgd(
    objective: Callable[[torch.Tensor], torch.Tensor],
    clean: torch.Tensor,
    radius: float,
    step_size: float,
    steps: int,
    generator: torch.Generator | None,
    schedule: str = "sign",
    start: torch.Tensor | None = None,
    exact: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """Maximise the per-sample `objective(x)` over the radius ball.

    Starts at `start` if given, else at a random point when a generator is given, else at the
    clean images. Only the input gradient is taken (`autograd.grad`), so model weights get no
    `.grad`. `schedule='apgd'` ignores `step_size` (APGD sets its own) and, given `exact`,
    decides on its values (best point, step halving) while following `objective`'s gradient:
    a bf16 gradient pass then leaves the decisions to fp32, not to bf16 rounding.
    """
    if radius == 0 or steps == 0:
        return clean.detach().clone()
    clean = clean.detach()
    if start is not None:
        adversarial = start.detach().clone()
    elif generator is not None:
        adversarial = random_start(clean, radius, generator)
    else:
        adversarial = clean.clone()
    if schedule == "apgd":
        return apgd(objective, clean, adversarial, radius, steps, exact)
    for _ in range(steps):
        _, gradient = value_and_gradient(objective, adversarial)
        adversarial = project(adversarial + step_size * gradient.sign(), clean, radius)
    return adversarial


def value_and_gradient(objective, x: torch.Tensor, exact=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample objective values (`exact`'s, when given) and the input gradient of the
    objective's sum, both detached."""
    x = x.detach().requires_grad_(True)
    value = objective(x)
    (gradient,) = torch.autograd.grad(value.sum(), x)
    if exact is not None:
        with torch.no_grad():
            value = exact(x.detach())
    return value.detach(), gradient.detach()


def apgd_checkpoints(steps: int) -> list[int]:
    """Iterations where APGD tests for progress: p0 = 0, p1 = 0.22, p_{j+1} = p_j +
    max(p_j - p_{j-1} - 0.03, 0.06), as fractions of `steps` (Croce & Hein, sec. 3.2)."""
    fractions = [0.0, 0.22]
    while fractions[-1] < 1:
        fractions.append(fractions[-1] + max(fractions[-1] - fractions[-2] - 0.03, 0.06))
    return sorted({math.ceil(round(f * steps, 6)) for f in fractions if 0 < f <= 1})


def apgd(objective, clean, start, radius: float, steps: int, exact=None) -> torch.Tensor:
    """APGD with per-sample step sizes; returns the per-sample best point seen (by `exact`'s
    values where given)."""
    view = (-1,) + (1,) * (clean.dim() - 1)
    step = torch.full((len(clean),), 2.0 * radius, device=clean.device)
    current = start
    value, gradient = value_and_gradient(objective, current, exact)
    best, best_value, best_gradient = current.clone(), value.clone(), gradient.clone()
    previous = current
    successes = torch.zeros(len(clean), device=clean.device)
    checkpoints = apgd_checkpoints(steps)
    last_checkpoint, step_at_last, best_at_last = 0, step.clone(), best_value.clone()
    for iteration in range(1, steps + 1):
        z = project(current + step.view(view) * gradient.sign(), clean, radius)
        momentum = 1.0 if iteration == 1 else APGD_MOMENTUM
        proposal = project(
            current + momentum * (z - current) + (1 - momentum) * (current - previous),
            clean,
            radius,
        )
        previous, current = current, proposal
        new_value, gradient = value_and_gradient(objective, current, exact)
        successes += (new_value > value).float()
        improved = new_value > best_value
        best[improved], best_value[improved] = current[improved], new_value[improved]
        best_gradient[improved] = gradient[improved]
        value = new_value
        if iteration in checkpoints:
            stalled = successes < APGD_SUCCESS_RATE * (iteration - last_checkpoint)
            stalled |= (step_at_last == step) & (best_at_last == best_value)
            step_at_last, best_at_last = step.clone(), best_value.clone()
            step[stalled] /= 2
            # the stalled samples restart from their best point
            current = torch.where(stalled.view(view), best, current)
            gradient = torch.where(stalled.view(view), best_gradient, gradient)
            value = torch.where(stalled, best_value, value)
            successes.zero_()
            last_checkpoint = iteration
    return best
