"""DVERGE and TRS as their official code runs them, adapted to the Proxy Anchor loss: each
test pins one defining property on tiny models (small CNN [4, 8] on 1x8x8 images)."""

import copy

import pytest
import torch
from torch import nn

from conftest import TINY_CNN, TINY_DATASET
from robdml.attacks.pgd import random_start
from robdml.defenses import StepContext, build_defense
from robdml.defenses import trs as trs_module
from robdml.defenses.dverge import feature_layers, layer_features, momentum_descent
from robdml.defenses.trs import (
    gradient_similarity,
    magnitude,
    magnitude_pgd,
    ramped_radius,
    smoothness,
)
from robdml.losses import proxy_anchor_loss
from robdml.models import EmbeddingModel, build_members

N_CLASSES, PER_CLASS = 4, 6
PAL_RECIPE = {"pal_margin": 0.1, "pal_alpha": 32}
DISTILLATION = {
    "eps_255": 17.85, "steps": 10, "step_fraction": 0.1, "momentum": 1.0, "random_start": False
}  # fmt: skip
DVERGE = {
    "method": "dverge",
    "members": 3,
    "distillation": DISTILLATION,
    "layer": "random",
    "plus_adv": False,
    "diversity_weight": 1.0,
    "attack": {"eps_255": 8, "steps": 10, "step_fraction": 0.25},
}
SMOOTHNESS_ATTACK = {
    "init_eps_255": 25.5, "final_eps_255": 51.0, "steps": 6, "step_fraction": 1 / 3,
    "accumulate": True,
}  # fmt: skip
TRS = {
    "method": "trs",
    "members": 3,
    "scale": 5.0,
    "alignment_weight": 2.0,
    "smoothness_weight": 3.0,  # not the official 2: a swapped weight would go unnoticed
    "plus_adv": False,
    "smoothness_attack": SMOOTHNESS_ATTACK,
}


def toy_batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    rng = torch.Generator().manual_seed(seed)
    images = torch.rand(N_CLASSES * PER_CLASS, 1, 8, 8, generator=rng)
    return images, torch.arange(N_CLASSES).repeat_interleave(PER_CLASS)


def toy_step(n_members: int, seed: int = 0, epoch: int = 0, epochs: int = 1) -> StepContext:
    members = build_members({"seed": 0, "backbone": TINY_CNN, "dataset": TINY_DATASET}, n_members)
    pal_losses = []
    for index in range(n_members):
        torch.manual_seed(index)
        pal_losses.append(proxy_anchor_loss(N_CLASSES, TINY_CNN["embedding_dim"], PAL_RECIPE))
    return StepContext(members, pal_losses, torch.Generator().manual_seed(seed), 0, epoch, epochs)


def replay(step: StepContext, seed: int = 0) -> StepContext:
    return StepContext(
        copy.deepcopy(step.members), copy.deepcopy(step.pal_losses),
        torch.Generator().manual_seed(seed), step.seed, step.epoch, step.epochs,
    )  # fmt: skip


def full_mask(labels: torch.Tensor, members: int) -> torch.Tensor:
    return torch.ones(len(labels), members, dtype=torch.bool)


# ---------------------------------------------------------------- DVERGE


@pytest.mark.parametrize("layer", [0, 1, -1])
def test_distillation_moves_features_towards_the_target_inside_the_eps_ball(layer):
    # 20 steps of eps / 10: unprojected, the steps could leave the ball
    defense = build_defense({**DVERGE, "distillation": {**DISTILLATION, "steps": 20}})
    step = toy_step(1)
    member = step.members[0]
    images, _ = toy_batch()
    targets = images.flip(0)
    distilled = defense.distill(step, member, images, targets, layer)
    eps = DISTILLATION["eps_255"] / 255
    with torch.no_grad():
        member.eval()
        goal = layer_features(member, targets, layer)
        before = (layer_features(member, images, layer) - goal).pow(2).mean(dim=1)
        after = (layer_features(member, distilled, layer) - goal).pow(2).mean(dim=1)
    assert (after < before).float().mean() > 0.9 and after.mean() < 0.8 * before.mean()
    assert (distilled - images).abs().amax() <= eps + 1e-6
    assert (distilled - images).abs().amax() > 0.5 * eps
    assert distilled.min() >= 0 and distilled.max() <= 1


def test_momentum_descent_matches_hand_computed_steps():
    """f(x) = (a - 0.545)^2 + 10 (b - 0.555)^2 + (c - 0.53)^2 from x0 = 0.5, step 0.05:
    step 1: grad (-0.09, -1.1, -0.06), L1 1.25, every sign -1: x1 = 0.55.
    step 2: grad (0.01, -0.1, 0.04), L1 0.15; with momentum 1 the L1-normalised sum is
    (-0.072 + 0.0667, -0.88 - 0.667, -0.048 + 0.267) = (-, -, +): x2 = (0.60, 0.60, 0.50).
    Plain sign steps (momentum 0) turn back on a: (0.50, 0.60, 0.50); an unnormalised
    accumulation (-0.08, -1.2, -0.02) would keep going on c: (0.60, 0.60, 0.60)."""
    target = torch.tensor([[0.545, 0.555, 0.53]])
    weight = torch.tensor([[1.0, 10.0, 1.0]])
    objective = lambda x: (weight * (x - target).pow(2)).sum(dim=1)  # noqa: E731
    clean = torch.full((1, 3), 0.5)
    one_step = momentum_descent(objective, clean, 0.3, 0.05, 1, 1.0)
    assert torch.allclose(one_step, torch.full((1, 3), 0.55))
    with_momentum = momentum_descent(objective, clean, 0.3, 0.05, 2, 1.0)
    assert torch.allclose(with_momentum, torch.tensor([[0.60, 0.60, 0.50]]))
    plain = momentum_descent(objective, clean, 0.3, 0.05, 2, 0.0)
    assert torch.allclose(plain, torch.tensor([[0.50, 0.60, 0.50]]))
    # the projection: a ball of 0.07 stops b and a at 0.57 after the second step
    clipped = momentum_descent(objective, clean, 0.07, 0.05, 2, 1.0)
    assert torch.allclose(clipped, torch.tensor([[0.57, 0.57, 0.50]]))


def test_random_layer_is_fixed_within_an_epoch_varies_across_epochs_and_is_reproducible():
    defense = build_defense(DVERGE)
    step = toy_step(3)
    count = len(feature_layers(step.members[0]))
    assert count == 3  # two BatchNorms and the embedding

    def layer_of(seed: int, epoch: int) -> int:
        return defense.layer_index(StepContext(step.members, step.pal_losses, step.generator,
                                               seed, epoch, 100))  # fmt: skip

    draws = [layer_of(0, epoch) for epoch in range(100)]
    assert set(draws) == set(range(count))  # uniform over all candidate layers, the last too
    assert max(draws.count(layer) for layer in range(count)) < 50
    assert draws == [layer_of(0, epoch) for epoch in range(100)]  # reproducible
    assert draws != [layer_of(1, epoch) for epoch in range(100)]  # a run's seed matters

    # within an epoch, every distillation of every step uses the epoch's layer
    used = []
    original = defense.distill
    defense.distill = lambda *args: used.append(args[-1]) or original(*args)
    images, labels = toy_batch()
    other = next(epoch for epoch in range(100) if draws[epoch] != draws[0])
    for epoch in (0, other):
        epoch_step = toy_step(3, seed=epoch, epoch=epoch, epochs=100)
        for _ in range(2):  # two steps: the epoch generator advances in between
            defense.loss(epoch_step, images, labels, full_mask(labels, 3))
        assert used == [draws[epoch]] * 6, epoch
        used.clear()


def test_a_fixed_layer_counts_the_candidate_layers():
    defense = build_defense({**DVERGE, "layer": -1})
    assert defense.layer_index(toy_step(1)) == -1
    step, images = toy_step(1), toy_batch()[0]
    member = step.members[0].eval()
    with torch.no_grad():
        assert torch.allclose(layer_features(member, images, -1), member(images))
        # the small CNN's first BatchNorm: [N, 4 channels x 8 x 8]
        assert layer_features(member, images, 0).shape == (len(images), 4 * 8 * 8)


def relu_output_of(module: nn.Module, model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    captured = []
    handle = module.register_forward_hook(lambda m, args, output: captured.append(output.clone()))
    with torch.no_grad():
        model(images)
    handle.remove()
    return captured[0].flatten(start_dim=1)


def test_features_are_taken_before_the_relu():
    """Pre-activation features take negative values, and their ReLU is what the network
    passes on: the small CNN's BatchNorm output (pooled first: pooling commutes with the
    ReLU), a ResNet block's sum out + identity, a GoogLeNet inception module's concatenated
    branches."""
    small = toy_step(1).members[0].eval()
    images = toy_batch()[0]
    with torch.no_grad():
        features = layer_features(small, images, 0)
    assert features.min() < 0
    norm, pool, relu = small.trunk[1:4]
    assert isinstance(norm, torch.nn.BatchNorm2d) and isinstance(relu, torch.nn.ReLU)
    pre_activation = features.view(len(images), norm.num_features, *images.shape[2:])
    passed_on = pool(pre_activation).relu().flatten(start_dim=1)
    assert torch.allclose(passed_on, relu_output_of(relu, small, images))

    dataset = {**TINY_DATASET, "image_size": 32}
    images = torch.rand(2, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    for arch, module_of in (
        ("resnet18", lambda trunk: trunk[5][1]),  # layer2's second block
        ("googlenet", lambda trunk: trunk.features[6]),  # inception3b
    ):
        torch.manual_seed(0)
        backbone = {"arch": arch, "embedding_dim": 8, "widths": [], "weights": None}
        model = EmbeddingModel(backbone, dataset).eval()
        module = module_of(model.trunk)
        inside = set(module.modules())  # the module and its submodules
        # the last layer tapped inside the module: a block's sum (after its bn1), the inception
        index = [i for i, taps in enumerate(feature_layers(model))
                 if any(tap.module in inside for tap in taps)][-1]  # fmt: skip
        with torch.no_grad():
            features = layer_features(model, images, index)
        assert features.min() < 0, arch
        assert torch.allclose(features.relu(), relu_output_of(module, model, images)), arch
    assert len(feature_layers(EmbeddingModel(
        {"arch": "resnet50", "embedding_dim": 8, "widths": [], "weights": None}, dataset
    ))) == 50  # fmt: skip


def test_plus_adv_adds_own_pgd_training_to_weighted_diversity():
    step = toy_step(3)
    images, labels = toy_batch()
    mask = full_mask(labels, 3)
    plain = build_defense({**DVERGE, "layer": 0}).loss(replay(step), images, labels, mask)
    losses = {}
    for weight in (0.0, 2.0):
        params = {**DVERGE, "layer": 0, "plus_adv": True, "diversity_weight": weight}
        defense = build_defense(params)
        losses[weight] = defense.loss(replay(step), images, labels, mask).item()
    assert losses[2.0] - losses[0.0] == pytest.approx(2 * plain.item(), rel=1e-4)
    with torch.no_grad():
        clean = sum(pal(member(images), labels) for member, pal in
                    zip(step.members, step.pal_losses, strict=True)).item()  # fmt: skip
    assert losses[0.0] > clean  # each member's own PGD examples raise its loss


# ---------------------------------------------------------------- TRS


def test_trs_terms_on_toy_gradients():
    g = torch.tensor([[1.0, 2.0, 0.0], [0.0, 0.0, 3.0]])
    orthogonal = torch.tensor([[-2.0, 1.0, 0.0], [0.0, 0.0, -1.0]])
    # Magnitude: 2 x mean over samples of ||g||^2 = 2 x (5 + 9) / 2
    assert magnitude(g).item() == pytest.approx(14.0)
    # smooth_loss: the members' mean Magnitude
    assert smoothness([g, 2 * g]).item() == pytest.approx((14.0 + 56.0) / 2)
    # cos_loss: |cos| per sample, averaged over samples, then over pairs
    assert gradient_similarity([g, orthogonal]).item() == pytest.approx((0 + 1) / 2)
    assert gradient_similarity([g, g, orthogonal]).item() == pytest.approx((1 + 0.5 + 0.5) / 3)


def test_trs_loss_equals_the_official_formula():
    """sum_j PAL_j + scale x (coeff x mean over pairs of mean |cos| + lamda x (1/M) sum_j
    2 mean ||g_j||^2), every term rebuilt here from the members' input gradients."""
    step = toy_step(3)
    images, labels = toy_batch()
    loss = build_defense(TRS).loss(replay(step), images, labels, full_mask(labels, 3))

    inputs = images.clone().requires_grad_(True)
    pals, gradients = [], []
    for member, pal in zip(step.members, step.pal_losses, strict=True):
        value = pal(member(inputs), labels)
        pals.append(value.item())
        gradients.append(torch.autograd.grad(value, inputs)[0].flatten(start_dim=1))
    cosines = []
    for a in range(3):
        for b in range(a + 1, 3):
            dot = (gradients[a] * gradients[b]).sum(dim=1)
            norms = gradients[a].norm(dim=1) * gradients[b].norm(dim=1)
            cosines.append((dot / norms).abs().mean())
    cos_loss = sum(cosines) / 3
    smooth_loss = sum(2 * g.pow(2).sum(dim=1).mean() for g in gradients) / 3
    expected = sum(pals) + 5.0 * (2.0 * cos_loss + 3.0 * smooth_loss)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_trs_plus_adv_takes_smoothness_on_clean_half_and_pgd_half():
    step = toy_step(3, epoch=2, epochs=4)
    images, labels = toy_batch()
    params = {**TRS, "plus_adv": True}
    loss = build_defense(params).loss(replay(step), images, labels, full_mask(labels, 3))

    # the same order as the loss: clean gradients (train mode: BatchNorm statistics move),
    # the PGD on the second half (eval mode, from the step generator), the mixed gradients
    reference = replay(step)
    members = list(zip(reference.members, reference.pal_losses, strict=True))
    clean = images.clone().requires_grad_(True)
    pals, clean_gradients, mixed_gradients = [], [], []
    for member, pal in members:
        value = pal(member(clean), labels)
        pals.append(value.item())
        clean_gradients.append(torch.autograd.grad(value, clean)[0].flatten(start_dim=1))
    half = len(images) // 2
    eps = (51.0 - 25.5) / 255 * 2 / 4 + 25.5 / 255
    adversarial = magnitude_pgd(reference, images[half:], labels[half:], eps, eps / 3, 6, True)
    mixed = torch.cat([images[:half], adversarial]).requires_grad_(True)
    for member, pal in members:
        value = pal(member(mixed), labels)
        mixed_gradients.append(torch.autograd.grad(value, mixed)[0].flatten(start_dim=1))
    expected = sum(pals) + 5.0 * (
        2.0 * gradient_similarity(clean_gradients) + 3.0 * smoothness(mixed_gradients)
    )
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    without = build_defense(TRS).loss(replay(step), images, labels, full_mask(labels, 3))
    assert loss.item() > without.item()  # the PGD half is less smooth than the clean one


def member_smoothness(step: StepContext, images: torch.Tensor, labels: torch.Tensor) -> float:
    inputs = images.clone().requires_grad_(True)
    gradients = []
    for member, pal in zip(step.members, step.pal_losses, strict=True):
        value = pal(member(inputs), labels)
        gradients.append(torch.autograd.grad(value, inputs)[0].flatten(start_dim=1))
    return smoothness(gradients).item()


@pytest.mark.parametrize("accumulate", [True, False])
def test_magnitude_pgd_raises_gradient_magnitude_inside_the_ball(accumulate):
    step = toy_step(3)
    for member in step.members:
        member.eval()
    images, labels = toy_batch()
    eps = 16 / 255
    adversarial = magnitude_pgd(replay(step), images, labels, eps, eps / 3, 6, accumulate)
    start = random_start(images, eps, torch.Generator().manual_seed(0))  # its random start
    assert (adversarial - images).abs().amax() <= eps + 1e-6
    assert adversarial.min() >= 0 and adversarial.max() <= 1
    assert member_smoothness(step, adversarial, labels) > 1.5 * member_smoothness(
        step, start, labels
    )
    assert member_smoothness(step, adversarial, labels) > 1.5 * member_smoothness(
        step, images, labels
    )


class SineLoss(nn.Module):
    """A stand-in Proxy Anchor loss: sum of sin(10 x), so its input gradient is 10 cos(10 x),
    the smoothness 2 x 100 cos^2(10 x) summed / N, and the ascent direction -sin(20 x)."""

    def forward(self, embeddings, labels):
        return torch.sin(10 * embeddings).sum()


@pytest.mark.parametrize("accumulate", [True, False])
def test_magnitude_pgd_steps_follow_the_accumulated_gradient_sign(accumulate):
    """Their adv.grad is never reset, so step t follows the sign of the sum of the gradients
    of steps 1..t; with `accumulate: false` it follows the current gradient."""
    clean = torch.full((1, 4), 0.5)
    step = StepContext([nn.Flatten()], [SineLoss()], torch.Generator().manual_seed(0))
    eps, step_size, steps = 0.3, 0.04, 6
    result = magnitude_pgd(step, clean, torch.zeros(1), eps, step_size, steps, accumulate)

    x = random_start(clean, eps, torch.Generator().manual_seed(0))
    total = torch.zeros_like(x)
    for _ in range(steps):
        ascent = -torch.sin(20 * x)
        total = total + ascent if accumulate else ascent
        x = torch.clamp(torch.min(torch.max(x + step_size * total.sign(), clean - eps),
                                  clean + eps), 0, 1)  # fmt: skip
    assert torch.allclose(result, x, atol=1e-6)
    other = magnitude_pgd(replay_sine(), clean, torch.zeros(1), eps, step_size, steps,
                          not accumulate)  # fmt: skip
    assert not torch.allclose(result, other)  # the two rules differ on this case


def replay_sine() -> StepContext:
    return StepContext([nn.Flatten()], [SineLoss()], torch.Generator().manual_seed(0))


def test_trs_pgd_eps_follows_the_linear_ramp(monkeypatch):
    """cureps = (adv_eps - init_eps) * epoch / epochs + init_eps, epoch counted from 0; the
    step is step_fraction x cureps, and the PGD sees only the second half of the batch."""
    assert ramped_radius(SMOOTHNESS_ATTACK, 0, 10) == pytest.approx(0.1)
    assert ramped_radius(SMOOTHNESS_ATTACK, 5, 10) == pytest.approx(0.15)
    assert ramped_radius(SMOOTHNESS_ATTACK, 9, 10) == pytest.approx(0.19)
    seen = []

    def record(step, images, labels, eps, step_size, steps, accumulate):
        seen.append((len(images), eps, step_size, steps, accumulate))
        return images.detach()

    monkeypatch.setattr(trs_module, "magnitude_pgd", record)
    defense = build_defense({**TRS, "plus_adv": True})
    images, labels = toy_batch()
    for epoch in (0, 3, 9):
        defense.loss(toy_step(3, epoch=epoch, epochs=10), images, labels, full_mask(labels, 3))
    expected = [0.1 + 0.1 * epoch / 10 for epoch in (0, 3, 9)]
    assert [s[1] for s in seen] == pytest.approx(expected)
    assert [s[2] for s in seen] == pytest.approx([eps / 3 for eps in expected])
    assert all(s[0] == len(images) - len(images) // 2 and s[3] == 6 and s[4] for s in seen)
