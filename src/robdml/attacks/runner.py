"""Attack a whole test set: embed it clean, build the attack's context, then run the PGD core
batch by batch for every eps. One process per (model, attack) covers the whole eps sweep: the
clean k-means and the process start-up are paid once.

Static attacks keep, per sample, the restart with the highest objective. Re-fitting attacks
(`Attack.refits`) run in rounds of `refit_every` steps over the whole set; after each round the
attacker re-clusters the delivered (8-bit) adversarial set with its own k-means seed, keeps the
round and restart whose clustering agrees least with its reference (NMI), and re-aims.

On cuda the GPU fast path (robdml.fast_path) applies to crafting; everything measured (the clean
embeddings, objective values, the re-fitting rounds' embeddings) stays fp32.
"""

import math
from collections.abc import Iterator

import torch
from sklearn.metrics import normalized_mutual_info_score
from torch import nn
from tqdm import tqdm

from robdml.attacks import build_attack
from robdml.attacks.base import Attack, Context
from robdml.attacks.centroids import kmeans_centroids
from robdml.attacks.pgd import pgd
from robdml.embedding import as_float, embed
from robdml.fast_path import FastPath, configure_fast_path
from robdml.runtime import generator
from robdml.threat_model import radius


def attack_test_set(*args, **kwargs) -> list[dict]:
    """`attack_each_eps` (same arguments), all budgets at once."""
    return list(attack_each_eps(*args, **kwargs))


def attack_each_eps(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    params: dict,
    eps_255_list: list[float],
    seed: int,
    batch_size: int,
    device: torch.device,
    fast_path: FastPath | None = None,
) -> Iterator[dict]:
    """Per budget of `eps_255_list` (in 1/255), as soon as it is crafted (an attack job saves
    each before the next): adversarial images, which samples were perturbed, the mean
    objective (first round's context) before and after, and for re-fitting attacks the chosen
    round's agreement. Each budget's random starts are its own (seeded by (seed, eps)), so
    any sub-list of budgets gives each of them what the whole list gives it.

    `images` are uint8 (a stored test set) or float in [0, 1]; the adversarial images come back
    in the same type: uint8 ones are what an attacker delivers as 8-bit image files, so they are
    rounded to the pixel grid (inside the eps ball) before anything is measured on them.
    Only a seeded `perturbed_fraction` of the samples is attacked. `seed` seeds the attacker's
    k-means and random starts (the workflow keeps it apart from the evaluation's k-means seeds).
    `fast_path` (None: its defaults for `device`) says how to run on a GPU.
    """
    fast_path = fast_path or configure_fast_path(device)
    attack = build_attack(params)
    model = fast_path.crafting_model(model)
    attacked = perturbed_mask(len(images), params["perturbed_fraction"], seed)
    crafting = Crafting(model, attack, images, attacked, params, batch_size, fast_path)
    clean = embed(model, crafting.resident, batch_size, device)
    first_context = attack.context(clean, labels, seed)
    n_clusters = int(labels.unique().numel())
    objective_clean = crafting.objective_values(crafting.resident, first_context).mean().item()
    for eps_255 in eps_255_list:
        best, record = crafting.run(first_context, eps_255, seed, n_clusters)
        objective_adversarial = crafting.objective_values(best, first_context).mean().item()
        yield {
            "eps_255": eps_255,
            "images": best,
            "perturbed": attacked,
            "objective_clean": objective_clean,
            "objective_adversarial": objective_adversarial,
            **record,
        }


class Crafting:
    """One attack against one model on one test set; `run` crafts the set at one eps."""

    def __init__(self, model, attack: Attack, images, attacked, params, batch_size, fast_path):
        self.model, self.attack, self.images, self.attacked = model, attack, images, attacked
        self.params, self.fast_path, self.device = params, fast_path, fast_path.device
        self.resident = fast_path.resident(images)  # clean batches are cut from this copy
        self.chunks = torch.arange(len(images)).split(batch_size)
        self.batch_size = batch_size

    def rounds(self) -> list[int]:
        """Steps per round: one round for static attacks, `refit_every` steps for re-fitting."""
        steps = self.params["steps"]
        every = self.params["refit_every"] if self.attack.refits else steps
        return [min(every, steps - done) for done in range(0, steps, every)]

    def run(self, first_context: Context, eps_255: float, seed: int, n_clusters: int) -> tuple:
        """(delivered adversarial set, record of the choice made) at one budget."""
        start_generator = generator(seed, round(eps_255 * 1000))
        if self.attack.refits:
            return self.run_refitting(first_context, eps_255, seed, n_clusters, start_generator)
        return self.run_static(first_context, eps_255, start_generator), {}

    def run_static(self, context: Context, eps_255: float, start_generator) -> torch.Tensor:
        """Per sample, the restart with the highest objective (the clean image if none beats it)."""
        best = self.images.clone()
        best_value = self.objective_values(best, context)
        for _ in range(self.params["restarts"]):
            crafted = self.craft(
                context, None, radius(eps_255), self.params["steps"], start_generator
            )
            delivered = self.deliver(crafted, eps_255)
            value = self.objective_values(delivered, context)
            better = value > best_value
            best[better], best_value[better] = delivered[better], value[better]
        return best

    def run_refitting(self, first_context, eps_255, seed, n_clusters, start_generator) -> tuple:
        """Over restarts and rounds, the delivered set whose re-clustering (the attacker's own
        k-means) agrees least with the attack's reference labels. A single candidate (one
        restart, one round) is delivered as it is: there is nothing to choose or re-aim."""
        rounds = self.rounds()
        if self.params["restarts"] == 1 and len(rounds) == 1:
            crafted = self.craft(first_context, None, radius(eps_255), rounds[0], start_generator)
            return self.deliver(crafted, eps_255), {}
        best, best_agreement, chosen = None, math.inf, {}
        for restart in range(self.params["restarts"]):
            context, current = first_context, None
            for round_index, steps in enumerate(rounds):
                current = self.craft(context, current, radius(eps_255), steps, start_generator)
                delivered = self.deliver(current, eps_255)
                embeddings = embed(self.model, delivered, self.batch_size, self.device)
                assignments, centroids = kmeans_centroids(
                    embeddings, n_clusters, seed, self.params["kmeans_n_init"]
                )
                agreement = normalized_mutual_info_score(
                    context.samples["reference"].numpy(), assignments.numpy()
                )
                if agreement < best_agreement:
                    best, best_agreement = delivered, agreement
                    chosen = {"restart": restart, "round": round_index}
                context = self.attack.refit(context, embeddings, assignments, centroids)
        return best, {"agreement_nmi": float(best_agreement), "chosen": chosen}

    def craft(self, context: Context, start, ball: float, steps: int, start_generator):
        """One round of the PGD core over every batch, from `start` (None: random start), into
        one preallocated float set (the largest thing an attack job holds)."""
        crafted = torch.empty(self.images.shape, dtype=as_float(self.images[:1]).dtype)
        for index in tqdm(self.chunks, desc=self.params["method"], mininterval=10, disable=None):
            batch_context = context.batch(index, self.device)

            def objective(x, batch_context=batch_context):  # the model under the fast path
                with self.fast_path.autocast():
                    embeddings = self.model(x)
                return self.attack.objective(embeddings.float(), batch_context)

            def exact(x, batch_context=batch_context):  # APGD's decisions: fp32 throughout
                return self.attack.objective(self.model(x), batch_context)

            clean = self.fast_path.batch(as_float(self.resident[index]))
            crafted[index] = pgd(
                objective, clean, ball, ball * self.params["step_fraction"], steps,
                start_generator, self.params["schedule"],
                None if start is None else self.fast_path.batch(start[index]),
                exact if self.fast_path.autocast_bf16 else None,
            ).cpu()  # fmt: skip
        return crafted

    def deliver(self, adversarial: torch.Tensor, eps_255: float) -> torch.Tensor:
        """The images as delivered: unattacked samples clean, uint8 sets on the pixel grid
        (batch by batch, so a 224 px set never exists in several float copies at once)."""
        delivered = torch.empty_like(
            self.images if self.images.dtype == torch.uint8 else adversarial
        )
        for index in self.chunks:
            attacked = self.attacked[index].view(-1, *[1] * (adversarial.dim() - 1))
            clean = self.images[index]
            chunk = torch.where(attacked, adversarial[index], as_float(clean))
            delivered[index] = (
                quantize(chunk, clean, eps_255) if clean.dtype == torch.uint8 else chunk
            )
        return delivered

    @torch.no_grad()
    def objective_values(self, images: torch.Tensor, context: Context) -> torch.Tensor:
        values = [
            self.attack.objective(
                self.model(as_float(images[index]).to(self.device)),
                context.batch(index, self.device),
            ).cpu()
            for index in self.chunks
        ]
        return torch.cat(values)


def quantize(adversarial: torch.Tensor, clean: torch.Tensor, eps_255: float) -> torch.Tensor:
    """Float adversarial images -> uint8, rounded and clamped to the eps ball around the uint8
    clean images, so the budget holds exactly on the pixel grid (eps is a whole number of
    grid steps: the config schema rejects fractional budgets for 8-bit test sets)."""
    budget = round(eps_255)
    rounded = torch.round(adversarial * 255)
    low, high = clean.float() - budget, clean.float() + budget
    return torch.min(torch.max(rounded, low), high).clamp(0, 255).to(torch.uint8)


def perturbed_mask(n: int, fraction: float, seed: int) -> torch.Tensor:
    """Bool [n]: which samples the attacker perturbs (all of them by default)."""
    n_perturbed = round(fraction * n)
    mask = torch.zeros(n, dtype=torch.bool)
    mask[torch.randperm(n, generator=generator(seed, 2))[:n_perturbed]] = True
    return mask
