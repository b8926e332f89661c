"""TRS, transferability reduced smooth ensemble (Yang et al., "TRS: Transferability Reduced
Ensemble via Promoting Gradient Diversity and Model Smoothness", NeurIPS 2021), with the loss
of the official code (AI-secure/Transferability-Reduced-Smooth-Ensemble,
train/Empirical/trainer.py, TRS_Trainer), the members' Proxy Anchor losses in place of their
cross-entropies:

    loss = sum_j PAL_j + scale x (alignment_weight x cos_loss + smoothness_weight x smooth_loss)

- cos_loss: mean over member pairs of the mean over samples of |cosine| of the two members'
  input gradients (their `Cosine`), taken at the clean batch: orthogonal gradients make an
  attack on one member transfer poorly;
- smooth_loss: (1/M) sum_j Magnitude(g_j), Magnitude(g) = 2 x mean over samples of ||g||^2:
  smooth members keep the orthogonality meaningful in a neighbourhood. Without `plus_adv` it
  is taken at the clean batch; with `plus_adv` (their `--plus-adv`) at [first half of the batch
  clean, second half PGD examples that maximise the members' mean gradient magnitude], the
  PGD's radius ramped linearly over the epochs from `init_eps_255` to `final_eps_255`.

Their `scale`, `coeff`, `lamda` (defaults 5, 2, 2) are `scale`, `alignment_weight` and
`smoothness_weight`. Their code is written for 3 members (/3); M members generalise it."""

import torch

from robdml.attacks.pgd import project, random_start
from robdml.defenses.base import Defense, eval_mode, input_gradients, pairwise_cosines
from robdml.threat_model import radius


def gradient_similarity(gradients: list[torch.Tensor]) -> torch.Tensor:
    """cos_loss: mean over member pairs of the mean over samples of |cosine|: 1 for aligned
    or opposite gradients, 0 for orthogonal ones."""
    return pairwise_cosines(gradients).abs().mean()


def magnitude(gradient: torch.Tensor) -> torch.Tensor:
    """Their `Magnitude`: 2 x the mean over samples of the squared gradient norm."""
    return 2 * gradient.pow(2).sum(dim=1).mean()


def smoothness(gradients: list[torch.Tensor]) -> torch.Tensor:
    """smooth_loss: the members' mean `magnitude`."""
    return sum(magnitude(gradient) for gradient in gradients) / len(gradients)


def ramped_radius(settings: dict, epoch: int, epochs: int) -> float:
    """Their cureps = (adv_eps - init_eps) * epoch / epochs + init_eps (epoch from 0), as a
    radius in [0, 1] pixel units."""
    init, final = radius(settings["init_eps_255"]), radius(settings["final_eps_255"])
    return (final - init) * epoch / epochs + init


def magnitude_pgd(
    step,
    images: torch.Tensor,
    labels: torch.Tensor,
    ball: float,
    step_size: float,
    steps: int,
    accumulate: bool,
) -> torch.Tensor:
    """Their `PGD`: from a uniform random start in the ball of radius `ball` (drawn on the
    step generator), `steps` sign steps of `step_size` that increase `smoothness` of the
    members' Proxy Anchor input gradients on (`images`, `labels`), projected on that ball and
    [0, 1]. With
    `accumulate` the step follows the sign of the SUM of the gradients so far, as theirs does
    (their adv.grad is never reset between steps); else the sign of the current one."""
    clean = images.detach()
    adversarial = random_start(clean, ball, step.generator)
    ascent = torch.zeros_like(clean)
    with eval_mode(step.members):
        for _ in range(steps):
            inputs = adversarial.detach().requires_grad_(True)
            gradients = []
            for member, pal in zip(step.members, step.pal_losses, strict=True):
                (gradient,) = torch.autograd.grad(
                    pal(member(inputs), labels), inputs, create_graph=True
                )
                gradients.append(gradient.flatten(start_dim=1))
            (gradient,) = torch.autograd.grad(smoothness(gradients), inputs)
            ascent = ascent + gradient if accumulate else gradient
            adversarial = project(adversarial + step_size * ascent.sign(), clean, ball)
    return adversarial.detach()


class TRS(Defense):
    def smoothness_inputs(self, step, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """[first half of the batch, PGD examples of the second half] (`plus_adv`)."""
        settings = self.params["smoothness_attack"]
        ball = ramped_radius(settings, step.epoch, step.epochs)
        half = len(images) // 2
        adversarial = magnitude_pgd(
            step,
            images[half:],
            labels[half:],
            ball,
            ball * settings["step_fraction"],
            settings["steps"],
            settings["accumulate"],
        )
        return torch.cat([images[:half].detach(), adversarial])

    def loss(self, step, images, labels, mask):
        losses, gradients = input_gradients(step, images, labels)
        alignment = gradient_similarity(gradients)
        if self.params["plus_adv"]:
            mixed = self.smoothness_inputs(step, images, labels)
            _, gradients = input_gradients(step, mixed, labels)
        return sum(losses) + self.params["scale"] * (
            self.params["alignment_weight"] * alignment
            + self.params["smoothness_weight"] * smoothness(gradients)
        )
