"""Attack a whole test set: embed it clean, build the attack's context once, then run PGD batch
by batch for every eps (with restarts keeping, per sample, the example with the highest
objective). One process per (model, attack) covers the whole eps sweep: the context (k-means on
the clean embeddings) and the process start-up are paid once."""

import torch
from torch import nn
from tqdm import tqdm

from robdml.attacks import build_attack
from robdml.attacks.pgd import pgd
from robdml.embedding import as_float, embed
from robdml.runtime import generator


def attack_test_set(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    params: dict,
    eps_255: list[float],
    seed: int,
    batch_size: int,
    device: torch.device,
) -> list[dict]:
    """Per eps: adversarial images, which samples were perturbed, and the mean objective
    before and after.

    `images` are uint8 (a stored test set) or float in [0, 1]; the adversarial images come back
    in the same type: uint8 ones are what an attacker delivers as 8-bit image files, so they are
    rounded to the pixel grid (and kept inside the eps ball) before the objective is measured.
    Only a seeded `perturbed_fraction` of the samples is attacked.
    """
    attack = build_attack(params)
    clean = embed(model, images, batch_size, device)
    context = attack.context(clean, labels, seed)
    attacked = perturbed_mask(len(images), params["perturbed_fraction"], seed)
    results = []
    for eps in eps_255:
        start_generator = generator(seed, round(eps * 1000))
        adversarial = images.clone()
        before, after = torch.zeros(len(images)), torch.zeros(len(images))
        chunks = torch.arange(len(images)).split(batch_size)
        for index in tqdm(chunks, desc=f"{params['method']} eps {eps:g}/255", mininterval=5):
            batch_context = {key: value[index].to(device) for key, value in context.items()}

            def objective(x, batch_context=batch_context):
                return attack.objective(model(x), batch_context)

            batch = images[index]
            best = attack_batch(
                objective, as_float(batch).to(device), attacked[index].to(device), eps / 255,
                params, start_generator,
            )  # fmt: skip
            if batch.dtype == torch.uint8:
                best = quantize(best, batch, eps)
            adversarial[index] = best
            with torch.no_grad():
                before[index] = objective(as_float(batch).to(device)).cpu()
                after[index] = objective(as_float(best).to(device)).cpu()
        results.append(
            {
                "eps_255": eps,
                "images": adversarial,
                "perturbed": attacked,
                "objective_clean": before.mean().item(),
                "objective_adversarial": after.mean().item(),
            }
        )
    return results


def attack_batch(objective, batch, attacked, eps, params, start_generator) -> torch.Tensor:
    """The best adversarial batch (on the CPU) over the restarts, per sample."""
    with torch.no_grad():
        best_value = objective(batch)
    best = batch.clone()
    if attacked.any():
        for _ in range(params["restarts"]):
            candidate = pgd(
                objective, batch, eps, eps * params["step_fraction"], params["steps"],
                start_generator,
            )  # fmt: skip
            with torch.no_grad():
                value = objective(candidate)
            better = (value > best_value) & attacked
            best[better], best_value[better] = candidate[better], value[better]
    return best.cpu()


def quantize(adversarial: torch.Tensor, clean: torch.Tensor, eps_255: float) -> torch.Tensor:
    """Float adversarial images -> uint8, rounded and clamped to the eps ball around the uint8
    clean images (so the budget holds exactly on the pixel grid, whatever eps)."""
    budget = int(eps_255)  # whole grid steps that fit in the ball
    rounded = torch.round(adversarial * 255)
    low, high = clean.float() - budget, clean.float() + budget
    return torch.min(torch.max(rounded, low), high).clamp(0, 255).to(torch.uint8)


def perturbed_mask(n: int, fraction: float, seed: int) -> torch.Tensor:
    """Bool [n]: which samples the attacker perturbs (all of them by default)."""
    n_perturbed = round(fraction * n)
    mask = torch.zeros(n, dtype=torch.bool)
    mask[torch.randperm(n, generator=generator(seed, 2))[:n_perturbed]] = True
    return mask
