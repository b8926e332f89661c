"""Attack a whole test set: embed it clean, build the attack's context once, then run PGD batch
by batch (with restarts keeping, per sample, the example with the highest objective)."""

import torch
from torch import nn
from tqdm import tqdm

from robdml.attacks import build_attack
from robdml.attacks.pgd import pgd
from robdml.embedding import embed
from robdml.runtime import generator


def attack_test_set(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    params: dict,
    eps_255: float,
    seed: int,
    batch_size: int,
    device: torch.device,
) -> dict:
    """Adversarial images [N,C,H,W] in [0, 1], which samples were perturbed, and the mean
    objective before and after, from float `images` in [0, 1].

    Only a seeded `perturbed_fraction` of the samples is attacked.
    """
    attack = build_attack(params)
    eps = eps_255 / 255
    clean = embed(model, images, batch_size, device)
    context = attack.context(clean, labels, seed)
    adversarial = images.clone()
    start_generator = generator(seed, 1)
    attacked = perturbed_mask(len(images), params["perturbed_fraction"], seed)
    objective_clean, objective_adversarial = torch.zeros(len(images)), torch.zeros(len(images))
    chunks = torch.arange(len(images)).split(batch_size)
    for index in tqdm(chunks, desc=f"{params['method']} eps {eps_255:g}/255", mininterval=5):
        batch = images[index].to(device)
        batch_context = {key: value[index].to(device) for key, value in context.items()}

        def objective(x, batch_context=batch_context):
            return attack.objective(model(x), batch_context)

        with torch.no_grad():
            best_value = objective(batch)
        objective_clean[index] = best_value.cpu()
        best = batch.clone()
        if attacked[index].any():
            for _ in range(params["restarts"]):
                candidate = pgd(
                    objective, batch, eps, eps * params["step_fraction"], params["steps"],
                    start_generator,
                )  # fmt: skip
                with torch.no_grad():
                    value = objective(candidate)
                better = (value > best_value) & attacked[index].to(device)
                best[better], best_value[better] = candidate[better], value[better]
        adversarial[index] = best.cpu()
        objective_adversarial[index] = best_value.cpu()
    return {
        "images": adversarial,
        "perturbed": attacked,
        "objective_clean": objective_clean.mean().item(),
        "objective_adversarial": objective_adversarial.mean().item(),
    }


def perturbed_mask(n: int, fraction: float, seed: int) -> torch.Tensor:
    """Bool [n]: which samples the attacker perturbs (all of them by default)."""
    n_perturbed = round(fraction * n)
    mask = torch.zeros(n, dtype=torch.bool)
    mask[torch.randperm(n, generator=generator(seed, 2))[:n_perturbed]] = True
    return mask
