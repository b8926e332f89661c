"""Attacks: the PGD core (sign and APGD steps), restarts, each registered attack's defining
property, and the clustering attacks' effect on k-means NMI in toy problems where it is
predictable."""

import math

import pytest
import torch
from attack_toys import DEMO_METHODS, PixelModel, params_for, ring_of_clusters, tight_clusters

from conftest import TINY_CNN, TINY_DATASET
from robdml.attacks import ATTACKS, Context, build_attack, pgd
from robdml.attacks.centroids import spread_targets
from robdml.attacks.pgd import apgd_checkpoints
from robdml.attacks.runner import attack_test_set
from robdml.embedding import embed
from robdml.metrics import evaluate_clustering
from robdml.models import EmbeddingModel, Ensemble
from robdml.threat_model import reads_true_labels

# what each method's defaults declare (`labels`): oracle, and mi's demo default
LABEL_AWARE = {name for name, method in DEMO_METHODS.items() if reads_true_labels(method)}


def nmi_of(model, images, labels):
    embeddings = embed(model, images, 64, "cpu")
    return evaluate_clustering(embeddings.numpy(), labels.numpy(), [0, 1, 2])["nmi"]


def test_pgd_on_a_linear_objective_reaches_the_signed_corner_of_the_ball():
    clean = torch.full((3, 1, 2, 2), 0.5)
    weights = torch.tensor([1.0, -2.0, 0.5, -0.1]).view(1, 1, 2, 2)
    for schedule in ("sign", "apgd"):
        adversarial = pgd(
            lambda x: (x * weights).flatten(1).sum(1), clean, 0.1, 0.03, 10, None, schedule
        )
        torch.testing.assert_close(adversarial, (clean + 0.1 * weights.sign()).expand_as(clean))


@pytest.mark.parametrize("schedule", ["sign", "apgd"])
def test_pgd_stays_in_the_eps_ball_and_in_unit_range_and_raises_the_objective(schedule):
    model = EmbeddingModel(TINY_CNN, TINY_DATASET).eval()
    clean = torch.rand(6, 1, 8, 8)
    clean[0] = 1.0  # saturated pixels: the [0, 1] projection must bind
    reference = model(clean).detach()

    def shift(x):
        return (model(x) - reference).pow(2).sum(1)

    eps = 8 / 255
    generator = torch.Generator().manual_seed(0)
    adversarial = pgd(shift, clean, eps, eps / 4, 10, generator, schedule)
    assert (adversarial - clean).abs().max() <= eps + 1e-6
    assert adversarial.min() >= 0 and adversarial.max() <= 1
    assert shift(adversarial).mean() > shift(clean).mean() + 1e-4


def test_apgd_checkpoints_follow_croce_and_hein():
    # p = 0.22, 0.41, 0.57, 0.70, 0.80, 0.87, 0.93, 0.99 (their sec. 3.2), times 100 steps
    assert apgd_checkpoints(100) == [22, 41, 57, 70, 80, 87, 93, 99]


def test_apgd_returns_the_best_point_it_saw_per_sample():
    """On an objective with many local maxima APGD's returned point scores at least as well as
    every iterate a plain sign-PGD run from the same start reaches after one step."""
    clean = torch.rand(32, 1, 4, 4, generator=torch.Generator().manual_seed(3))

    def wiggly(x):
        return torch.sin(40 * x).flatten(1).sum(1)

    eps = 0.1
    start = torch.Generator().manual_seed(1)
    best = pgd(wiggly, clean, eps, 0.0, 20, start, "apgd")
    first_step = pgd(wiggly, clean, eps, 2 * eps, 1, torch.Generator().manual_seed(1))
    assert (wiggly(best) >= wiggly(first_step) - 1e-5).all()
    assert (best - clean).abs().max() <= eps + 1e-6


@pytest.mark.parametrize("method", sorted(ATTACKS))
def test_every_attack_is_bounded_effective_and_deterministic(method):
    images, labels = ring_of_clusters()
    model = PixelModel()
    runs = [
        attack_test_set(model, images, labels, params_for(method), [20.0], 0, 64, "cpu")[0]
        for _ in range(2)
    ]
    adversarial = runs[0]["images"]
    assert (adversarial - images).abs().max() <= 20 / 255 + 1e-6
    assert adversarial.min() >= 0 and adversarial.max() <= 1
    assert runs[0]["objective_adversarial"] > runs[0]["objective_clean"]
    assert torch.equal(runs[0]["images"], runs[1]["images"])


LABEL_FREE = [params_for(m) for m in sorted(ATTACKS) if m not in LABEL_AWARE] + [
    params_for("mi", labels="clean_clustering")
]


@pytest.mark.parametrize("params", LABEL_FREE, ids=lambda p: f"{p['method']}-{p.get('labels')}")
def test_label_free_attacks_never_read_the_labels(params):
    """Renaming the classes (same partition, other names) and then merging two of them changes
    nothing for a label-free attacker: it may count the classes (the defender's k), no more."""
    images, labels = ring_of_clusters()
    assert not build_attack(params).uses_labels
    renamed = torch.randperm(12, generator=torch.Generator().manual_seed(0))[labels]
    merged = torch.where(labels == 1, 0, labels)
    merged[-1] = 1  # keep 12 distinct labels, so k stays the same
    runs = [
        attack_test_set(PixelModel(), images, given, params, [20.0], 0, 64, "cpu")[0]["images"]
        for given in (labels, renamed, merged)
    ]
    assert torch.equal(runs[0], runs[1]) and torch.equal(runs[0], runs[2])


def test_label_aware_attacks_declare_and_use_the_labels():
    images, labels = ring_of_clusters()
    merged = torch.where(labels == 1, 0, labels)
    merged[-1] = 1
    assert LABEL_AWARE == {"oracle", "mi"}  # oracle by its schema entry, mi by the demo's labels
    for method in sorted(LABEL_AWARE):
        assert build_attack(params_for(method)).uses_labels
        runs = [
            attack_test_set(PixelModel(), images, given, params_for(method), [20.0], 0, 64, "cpu")
            for given in (labels, merged)
        ]
        assert not torch.equal(runs[0][0]["images"], runs[1][0]["images"])


def test_restarts_keep_the_per_sample_best():
    images, labels = ring_of_clusters()
    model = PixelModel()
    one, three = (
        attack_test_set(
            model, images, labels, params_for("centroid", restarts=r), [6.0], 0, 64, "cpu"
        )[0]["images"]
        for r in (1, 3)
    )  # fmt: skip
    attack = build_attack(params_for("centroid"))
    context = attack.context(embed(model, images, 64, "cpu"), labels, 0)
    values = [attack.objective(model(x), context) for x in (one, three)]
    assert (values[1] >= values[0] - 1e-6).all()  # restart 1 is the same run as restarts=1
    assert (values[1] > values[0] + 1e-6).any()


def test_centroid_attack_breaks_clustering_and_oracle_is_at_least_as_strong():
    images, labels = ring_of_clusters()
    model = PixelModel()
    clean_nmi = nmi_of(model, images, labels)
    robust = {}
    for method in ("centroid", "oracle"):
        result = attack_test_set(model, images, labels, params_for(method), [20.0], 0, 64, "cpu")
        robust[method] = nmi_of(model, result[0]["images"], labels)
    assert clean_nmi > 0.95
    assert robust["centroid"] < clean_nmi - 0.1
    assert robust["oracle"] <= robust["centroid"] + 0.02


@pytest.mark.parametrize(
    "name, params",
    [
        ("multi_target", params_for("multi_target")),
        ("refit", params_for("refit")),
        ("mi", params_for("mi")),
        ("cluster_mi", params_for("mi", labels="clean_clustering")),
    ],
)
def test_spreading_attacks_beat_centroid_where_it_regroups(name, params):
    """`centroid` moves a tight cluster as a whole and re-clustering finds it again; the
    attacks that split clusters over several others (or minimise the label-cluster mutual
    information) must not."""
    images, labels = tight_clusters()
    model = PixelModel()
    base = params_for("centroid", steps=params["steps"])
    centroid = attack_test_set(model, images, labels, base, [30.0], 0, 64, "cpu")[0]
    spread = attack_test_set(model, images, labels, params, [30.0], 0, 64, "cpu")[0]
    assert nmi_of(model, images, labels) > 0.99
    assert nmi_of(model, centroid["images"], labels) > 0.95
    assert nmi_of(model, spread["images"], labels) < nmi_of(model, centroid["images"], labels) - 0.2


def test_spread_targets_deal_each_group_over_several_clusters():
    centroids = torch.eye(4)
    embeddings = centroids[torch.tensor([0] * 6 + [1] * 6)]
    own = torch.tensor([0] * 6 + [1] * 6)
    targets = spread_targets(embeddings, own, own, centroids, n_targets=3)
    for group in (0, 1):
        chosen = targets[own == group]
        assert group not in chosen.tolist()
        assert torch.bincount(chosen, minlength=4).max() == 2  # 6 members over 3 targets


def test_refitting_attacks_record_the_round_they_chose():
    images, labels = tight_clusters()
    result = attack_test_set(
        PixelModel(), images, labels, params_for("refit"), [30.0], 0, 64, "cpu"
    )
    rounds = math.ceil(DEMO_METHODS["refit"]["steps"] / DEMO_METHODS["refit"]["refit_every"])
    assert 0 <= result[0]["chosen"]["round"] < rounds
    assert 0 <= result[0]["agreement_nmi"] < 1


def test_perturbed_fraction_leaves_the_rest_untouched():
    images, labels = ring_of_clusters()
    params = params_for("es", perturbed_fraction=0.25)
    result = attack_test_set(PixelModel(), images, labels, params, [20.0], 0, 64, "cpu")[0]
    changed = (result["images"] != images).flatten(1).any(dim=1)
    assert result["perturbed"].sum() == round(0.25 * len(images))
    assert not changed[~result["perturbed"]].any()


def test_ensemble_attack_gradient_reaches_every_member():
    members = [EmbeddingModel(TINY_CNN, TINY_DATASET).eval() for _ in range(3)]
    ensemble = Ensemble(members).eval()
    images = torch.rand(4, 1, 8, 8)
    reference = ensemble(images).detach()
    attack = ATTACKS["es"](params_for("es"))
    adversarial = images + 0.01 * torch.randn(images.shape)
    attack.objective(ensemble(adversarial), Context({"clean": reference})).sum().backward()
    for member in members:
        assert member.head.weight.grad is not None
        assert member.head.weight.grad.abs().sum() > 0


def test_uint8_test_sets_come_back_as_uint8_on_the_pixel_grid_inside_the_ball():
    images, labels = ring_of_clusters()
    stored = torch.round(images * 255).to(torch.uint8)
    for method in ("centroid", "mi"):
        result = attack_test_set(
            PixelModel(), stored, labels, params_for(method), [2.0], 0, 64, "cpu"
        )[0]
        adversarial = result["images"]
        assert adversarial.dtype == torch.uint8
        assert (adversarial.int() - stored.int()).abs().max() == 2
        assert result["objective_adversarial"] > result["objective_clean"]
