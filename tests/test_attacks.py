"""Attacks: the PGD core's projection and ascent, each registered attack's defining property,
and the clustering attacks' effect on k-means NMI in a toy problem where it is predictable."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from conftest import TINY_CNN, TINY_DATASET
from robdml.attacks import ATTACKS, pgd
from robdml.attacks.runner import attack_test_set
from robdml.embedding import embed
from robdml.metrics import evaluate_clustering
from robdml.models import EmbeddingModel, Ensemble

ATTACK_PARAMS = {"steps": 10, "step_fraction": 0.25, "restarts": 1, "perturbed_fraction": 1.0}


def params_for(method: str) -> dict:
    params = {"method": method, **ATTACK_PARAMS}
    if method in ("centroid", "random_target"):
        params["kmeans_n_init"] = 1
    return params


class TwoPixelModel(nn.Module):
    """Embedding = direction of the two pixels around 0.5: a 2-D toy with exact geometry."""

    def forward(self, images):
        return F.normalize(images.flatten(1) - 0.5, dim=1)


def ring_of_clusters(n_classes=12, per_class=10, radius=0.3, spread=0.01, seed=0):
    """Two-pixel images whose embeddings form `n_classes` tight clusters on a circle; adjacent
    clusters are 2 r sin(pi / n) = 0.155 apart, so an L-inf eps of 0.08 can cross halfway."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(n_classes).repeat_interleave(per_class)
    angles = 2 * math.pi * labels / n_classes
    points = radius * torch.stack([angles.cos(), angles.sin()], dim=1) + 0.5
    points += spread * torch.randn(points.shape, generator=generator)
    return points.view(-1, 1, 1, 2).clamp(0, 1), labels


def test_pgd_on_a_linear_objective_reaches_the_signed_corner_of_the_ball():
    clean = torch.full((3, 1, 2, 2), 0.5)
    weights = torch.tensor([1.0, -2.0, 0.5, -0.1]).view(1, 1, 2, 2)
    adversarial = pgd(lambda x: (x * weights).flatten(1).sum(1), clean, 0.1, 0.03, 10, None)
    torch.testing.assert_close(adversarial, (clean + 0.1 * weights.sign()).expand_as(clean))


def test_pgd_stays_in_the_eps_ball_and_in_unit_range_and_raises_the_objective():
    model = EmbeddingModel(TINY_CNN, TINY_DATASET).eval()
    clean = torch.rand(6, 1, 8, 8)
    clean[0] = 1.0  # saturated pixels: the [0, 1] projection must bind
    reference = model(clean).detach()

    def shift(x):
        return (model(x) - reference).pow(2).sum(1)

    eps = 8 / 255
    adversarial = pgd(shift, clean, eps, eps / 4, 10, torch.Generator().manual_seed(0))
    assert (adversarial - clean).abs().max() <= eps + 1e-6
    assert adversarial.min() >= 0 and adversarial.max() <= 1
    assert shift(adversarial).mean() > shift(clean).mean() + 1e-4


@pytest.mark.parametrize("method", sorted(ATTACKS))
def test_every_attack_is_bounded_effective_and_deterministic(method):
    images, labels = ring_of_clusters()
    model = TwoPixelModel()
    runs = [
        attack_test_set(model, images, labels, params_for(method), [20.0], 0, 64, "cpu")[0]
        for _ in range(2)
    ]
    adversarial = runs[0]["images"]
    assert (adversarial - images).abs().max() <= 20 / 255 + 1e-6
    assert adversarial.min() >= 0 and adversarial.max() <= 1
    assert runs[0]["objective_adversarial"] > runs[0]["objective_clean"]
    assert torch.equal(runs[0]["images"], runs[1]["images"])


def nmi_of(model, images, labels):
    embeddings = embed(model, images, 64, "cpu")
    return evaluate_clustering(embeddings.numpy(), labels.numpy(), seed=0)["nmi"]


def test_centroid_attack_breaks_clustering_and_oracle_is_at_least_as_strong():
    images, labels = ring_of_clusters()
    model = TwoPixelModel()
    clean_nmi = nmi_of(model, images, labels)
    robust = {}
    for method in ("centroid", "oracle"):
        result = attack_test_set(model, images, labels, params_for(method), [20.0], 0, 64, "cpu")
        robust[method] = nmi_of(model, result[0]["images"], labels)
    assert clean_nmi > 0.95
    assert robust["centroid"] < clean_nmi - 0.1
    assert robust["oracle"] <= robust["centroid"] + 0.02


def test_perturbed_fraction_leaves_the_rest_untouched():
    images, labels = ring_of_clusters()
    params = {**params_for("es"), "perturbed_fraction": 0.25}
    result = attack_test_set(TwoPixelModel(), images, labels, params, [20.0], 0, 64, "cpu")[0]
    changed = (result["images"] != images).flatten(1).any(dim=1)
    assert result["perturbed"].sum() == round(0.25 * len(images))
    assert not changed[~result["perturbed"]].any()


def test_ensemble_attack_gradient_reaches_every_member():
    members = [EmbeddingModel(TINY_CNN, TINY_DATASET).eval() for _ in range(3)]
    ensemble = Ensemble(members).eval()
    images = torch.rand(4, 1, 8, 8)
    reference = ensemble(images).detach()
    attack = ATTACKS["es"](params_for("es"))
    context = {"clean": reference}
    adversarial = images + 0.01 * torch.randn(images.shape)
    attack.objective(ensemble(adversarial), context).sum().backward()
    for member in members:
        assert member.head.weight.grad is not None
        assert member.head.weight.grad.abs().sum() > 0


def test_uint8_test_sets_come_back_as_uint8_inside_the_ball_for_fractional_eps():
    images, labels = ring_of_clusters()
    stored = torch.round(images * 255).to(torch.uint8)
    result = attack_test_set(
        TwoPixelModel(), stored, labels, params_for("centroid"), [2.5], 0, 64, "cpu"
    )[0]
    adversarial = result["images"]
    assert adversarial.dtype == torch.uint8
    assert (adversarial.int() - stored.int()).abs().max() <= 2  # 2.5/255 holds 2 grid steps
    assert result["objective_adversarial"] > result["objective_clean"]
