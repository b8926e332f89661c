import itertools
import sys
from collections import Counter

import numpy as np
import pytest
import torch
from pytorch_metric_learning.distances import CosineSimilarity
from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator
from pytorch_metric_learning.utils.inference import CustomKNN
from scipy.stats import chisquare
from sklearn.metrics import (
    adjusted_mutual_info_score,
    adjusted_rand_score,
    normalized_mutual_info_score,
)

from robdml.metrics import (
    KMEANS_BACKENDS,
    adjusted_mutual_info,
    chance_nmi,
    clustering_metrics,
    evaluate_clustering,
    kmeans_assign,
    pairwise_f1,
    retrieval_metrics,
)
from robdml.metrics.kmeans import kmeans_plusplus


def clustered_embeddings(n_classes, per_class, dim, noise, seed):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_classes, dim))
    labels = np.repeat(np.arange(n_classes), per_class)
    embeddings = centres[labels] + noise * rng.standard_normal((len(labels), dim))
    return embeddings.astype(np.float32), labels


def pml_metrics(query, query_labels, reference=None, reference_labels=None):
    """AccuracyCalculator without faiss. With no reference it retrieves among the queries and sets
    ref_includes_query=True itself; with a reference, queries are not excluded from it."""
    calculator = AccuracyCalculator(
        include=("precision_at_1", "r_precision", "mean_average_precision_at_r"),
        k="max_bin_count",
        knn_func=CustomKNN(CosineSimilarity()),
    )
    return calculator.get_accuracy(
        torch.as_tensor(query),
        torch.as_tensor(query_labels),
        None if reference is None else torch.as_tensor(reference),
        None if reference_labels is None else torch.as_tensor(reference_labels),
        ref_includes_query=False,
    )


# --- clustering ---------------------------------------------------------------------------


def test_perfect_clustering_scores_one():
    labels = np.array([0, 0, 1, 1, 1, 2])
    metrics = clustering_metrics(labels, labels)
    for name in ("nmi", "ami", "ari", "f1"):
        assert metrics[name] == pytest.approx(1.0)


def test_pairwise_f1_hand_example():
    labels = np.array([0, 0, 0, 1, 1, 1])
    assignments = np.array([0, 0, 1, 1, 1, 1])
    # Cluster 0 = {0, 1}: 1 pair, same class. Cluster 1 = {2, 3, 4, 5} (classes 0, 1, 1, 1):
    # 6 pairs, 3 of them same class. Same-cluster pairs 7, of which true positives 1 + 3 = 4,
    # false positives 3. Same-class pairs 3 + 3 = 6, false negatives 6 - 4 = 2.
    # precision 4/7, recall 4/6, F1 = 2 * 4 / (2 * 4 + 3 + 2) = 8/13.
    assert pairwise_f1(labels, assignments) == pytest.approx(8 / 13)
    assert clustering_metrics(labels, assignments)["f1"] == pytest.approx(8 / 13)


def test_clustering_metrics_ignore_cluster_ids():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, size=200)
    assignments = rng.integers(0, 6, size=200)
    relabelled = rng.permutation(6)[assignments]
    assert clustering_metrics(labels, relabelled) == pytest.approx(
        clustering_metrics(labels, assignments)
    )


@pytest.mark.parametrize("backend", KMEANS_BACKENDS)
def test_evaluate_clustering_recovers_separated_classes(backend):
    embeddings, labels = clustered_embeddings(n_classes=8, per_class=25, dim=16, noise=0.05, seed=1)
    metrics = evaluate_clustering(embeddings, labels, [0], n_init=3, backend=backend)
    assert metrics["nmi"] == pytest.approx(1.0)
    assert metrics["ari"] == pytest.approx(1.0)
    assert metrics["f1"] == pytest.approx(1.0)
    assert metrics["nmi_chance"] < 0.2


def test_evaluate_clustering_averages_over_kmeans_seeds():
    """Overlapping classes: k-means depends on its seed; the record is the seeds' mean and std."""
    embeddings, labels = clustered_embeddings(n_classes=20, per_class=10, dim=8, noise=0.6, seed=2)
    seeds = [0, 1, 2, 3]
    runs = [evaluate_clustering(embeddings, labels, [seed]) for seed in seeds]
    pooled = evaluate_clustering(embeddings, labels, seeds)
    for metric in ("nmi", "ami", "ari", "f1"):
        values = [run[metric] for run in runs]
        assert pooled[metric] == pytest.approx(np.mean(values))
        assert pooled[f"{metric}_std"] == pytest.approx(np.std(values))
    assert pooled["nmi_std"] > 0
    assert pooled["nmi_chance"] == runs[0]["nmi_chance"]


def test_clustering_metrics_match_sklearn():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 10, size=300)
    assignments = np.where(rng.random(300) < 0.7, labels, rng.integers(0, 10, size=300))
    metrics = clustering_metrics(labels, assignments)
    assert metrics["nmi"] == normalized_mutual_info_score(labels, assignments)
    assert metrics["ami"] == pytest.approx(
        adjusted_mutual_info_score(labels, assignments), abs=1e-10
    )
    assert metrics["ari"] == adjusted_rand_score(labels, assignments)


def test_chance_nmi_of_many_small_clusters():
    labels = np.repeat(np.arange(278), 16)
    baseline = chance_nmi(labels, labels, seed=0)
    assert baseline == pytest.approx(0.51, abs=0.02)
    assert baseline < clustering_metrics(labels, labels)["nmi"] - 0.4
    assert chance_nmi(labels, labels, seed=0) == baseline


def ami_cases():
    rng = np.random.default_rng(8)
    for n, n_classes, n_clusters in [(50, 3, 4), (300, 10, 12), (1000, 200, 150), (600, 599, 3)]:
        labels = rng.integers(0, n_classes, n)
        random = rng.integers(0, n_clusters, n)
        yield f"random-{n}-{n_classes}-{n_clusters}", labels, random
        yield (
            f"agreeing-{n}-{n_classes}-{n_clusters}",
            labels,
            np.where(rng.random(n) < 0.7, labels, random),
        )
    n = 40
    yield "one-cluster-each", np.zeros(n, int), np.zeros(n, int)  # sklearn: 1.0
    yield "one-class", np.zeros(n, int), np.arange(n)  # sklearn: 0.0
    yield "one-cluster", rng.integers(0, 5, n), np.zeros(n, int)  # sklearn: 0.0
    yield "all-singletons", np.arange(n), rng.permutation(n)
    yield "singleton-clusters", rng.integers(0, 5, n), np.arange(n)
    yield "identical", np.repeat(np.arange(10), 4), np.repeat(np.arange(10), 4)
    yield "independent", np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1])


AMI_CASES = list(ami_cases())


@pytest.mark.parametrize(("labels", "assignments"), [c[1:] for c in AMI_CASES],
                         ids=[c[0] for c in AMI_CASES])  # fmt: skip
def test_ami_equals_sklearn(labels, assignments):
    expected = adjusted_mutual_info_score(labels, assignments)
    assert adjusted_mutual_info(labels, assignments) == pytest.approx(expected, abs=1e-10)


# --- k-means backends ---------------------------------------------------------------------


def greedy_kmeans_plusplus_distribution(points: np.ndarray, n_seeds: int) -> dict:
    """Exact probability of every ordered seed sequence of greedy k-means++ (sklearn's
    algorithm: 2 + ln k candidates drawn proportional to D, keep the lowest potential, first
    of equals), by enumerating every candidate tuple."""
    n_candidates = 2 + int(np.log(n_seeds))
    squared = ((points[:, None] - points[None]) ** 2).sum(axis=2)
    sequences = {(first,): 1 / len(points) for first in range(len(points))}
    for _ in range(n_seeds - 1):
        grown = Counter()
        for sequence, probability in sequences.items():
            nearest = squared[list(sequence)].min(axis=0)
            draw = nearest / nearest.sum()
            for candidates in itertools.product(range(len(points)), repeat=n_candidates):
                weight = np.prod(draw[list(candidates)])
                if weight > 0:
                    potentials = [np.minimum(nearest, squared[c]).sum() for c in candidates]
                    grown[sequence + (candidates[int(np.argmin(potentials))],)] += (
                        probability * weight
                    )
        sequences = grown
    return sequences


@pytest.fixture
def one_thread():
    """Thousands of tiny k-means++ runs: threads only add synchronisation (10x slower on 2
    busy cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_kmeans_plusplus_draws_exactly_as_greedy_kmeans_plusplus(one_thread):
    """The block-wise rejection sampling gives sklearn's seed distribution: the third seed is
    drawn from a block proposed before the second was chosen."""
    points = np.array([[0, 0], [0.1, 0.05], [1, 0], [1.1, 0.3], [3, 1]])
    expected = greedy_kmeans_plusplus_distribution(points, n_seeds=3)
    runs = 3000
    observed = Counter(
        tuple(kmeans_plusplus(torch.tensor(points, dtype=torch.float32), 3,
                              torch.Generator().manual_seed(seed)).tolist())
        for seed in range(runs)
    )  # fmt: skip
    assert set(observed) <= set(expected)
    frequent = [sequence for sequence, p in expected.items() if p * runs >= 5]
    observed_counts = [observed[sequence] for sequence in frequent]
    expected_counts = [expected[sequence] * runs for sequence in frequent]
    scale = sum(observed_counts) / sum(expected_counts)
    _, p_value = chisquare(observed_counts, [count * scale for count in expected_counts])
    assert p_value > 1e-3


def blobs():
    """The DML regime: many small classes (100 of 4, N / k = 4) that overlap a little."""
    return clustered_embeddings(n_classes=100, per_class=4, dim=64, noise=1.0, seed=9)


def test_backends_agree_within_kmeans_noise():
    embeddings, labels = blobs()
    seeds = list(range(8))
    reference = evaluate_clustering(embeddings, labels, seeds, backend="sklearn")
    for backend in ("torch", "faiss"):
        metrics = evaluate_clustering(embeddings, labels, seeds, backend=backend)
        for metric in ("nmi", "ari"):
            noise = max(reference[f"{metric}_std"], metrics[f"{metric}_std"])
            assert abs(metrics[metric] - reference[metric]) <= noise, (backend, metric)


def test_torch_and_faiss_backends_cluster_identically():
    """Same seeding and Lloyd steps; only the nearest-centre search differs."""
    embeddings, labels = blobs()
    torch_assignments, torch_centroids = kmeans_assign(embeddings, 100, 3, backend="torch")
    faiss_assignments, faiss_centroids = kmeans_assign(embeddings, 100, 3, backend="faiss")
    np.testing.assert_array_equal(torch_assignments, faiss_assignments)
    np.testing.assert_allclose(torch_centroids, faiss_centroids, atol=1e-6)
    torch_metrics = evaluate_clustering(embeddings, labels, [3], backend="torch")
    assert torch_metrics == evaluate_clustering(embeddings, labels, [3], backend="faiss")


@pytest.mark.parametrize("backend", ["torch", "faiss"])
def test_fast_backends_are_deterministic_given_the_seed(backend):
    embeddings, _ = blobs()
    first, _ = kmeans_assign(embeddings, 100, seed=5, n_init=2, backend=backend)
    again, _ = kmeans_assign(embeddings, 100, seed=5, n_init=2, backend=backend)
    other, _ = kmeans_assign(embeddings, 100, seed=6, n_init=2, backend=backend)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_fewer_distinct_points_than_clusters_still_clusters():
    embeddings = np.repeat(np.eye(3, dtype=np.float32), 4, axis=0)
    assignments, centroids = kmeans_assign(embeddings, 5, seed=0, backend="torch")
    assert assignments.shape == (12,) and centroids.shape == (5, 3)
    assert len(np.unique(assignments[::4])) == 3


def test_missing_faiss_is_one_line_naming_the_config_key(monkeypatch):
    monkeypatch.setitem(sys.modules, "faiss", None)  # makes `import faiss` fail
    embeddings, _ = blobs()
    with pytest.raises(ImportError) as error:
        kmeans_assign(embeddings, 100, seed=0, backend="faiss")
    assert "evaluation.kmeans_backend" in str(error.value)
    assert "\n" not in str(error.value)


# --- retrieval ----------------------------------------------------------------------------


def test_retrieval_hand_example():
    # Unit vectors at these angles; cosine similarity falls with the angle between them.
    angles = np.deg2rad([0, 10, 40, 60, 75])
    embeddings = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    labels = [0, 0, 1, 0, 1]
    # Neighbours by angle (labels in brackets), R = other samples of the query's class:
    # q0 (0):  1[0] 2[1] 3[0] 4[1]  R=2  hit@1       AP@R = (1/2)(1/1)       = 0.5
    # q1 (0):  0[0] 2[1] 3[0] 4[1]  R=2  hit@1       AP@R = 0.5
    # q2 (1):  3[0] 1[0] 4[1] 0[0]  R=1  hit@4 only  AP@R = 0
    # q3 (0):  4[1] 2[1] 1[0] 0[0]  R=2  hit@4 only  AP@R = 0
    # q4 (1):  3[0] 2[1] 1[0] 0[0]  R=1  hit@2       AP@R = 0
    # R-precision: q0 and q1 have 1 of R=2 in their top 2, the others none: (1/2 + 1/2) / 5.
    metrics = retrieval_metrics(embeddings, labels, ks=(1, 2, 4))
    assert metrics == pytest.approx(
        {"recall@1": 2 / 5, "recall@2": 3 / 5, "recall@4": 1.0, "r_precision": 1 / 5,
         "map_at_r": 1 / 5}
    )  # fmt: skip


def test_retrieval_matches_accuracy_calculator():
    embeddings, labels = clustered_embeddings(n_classes=30, per_class=20, dim=32, noise=1.0, seed=3)
    ours = retrieval_metrics(embeddings, labels)
    theirs = pml_metrics(embeddings, labels)
    assert 0.1 < ours["map_at_r"] < 0.9  # not trivially perfect or hopeless
    assert ours["recall@1"] == pytest.approx(theirs["precision_at_1"], abs=1e-6)
    assert ours["r_precision"] == pytest.approx(theirs["r_precision"], abs=1e-6)
    assert ours["map_at_r"] == pytest.approx(theirs["mean_average_precision_at_r"], abs=1e-6)


def test_retrieval_does_not_depend_on_chunk_size():
    embeddings, labels = clustered_embeddings(n_classes=30, per_class=20, dim=32, noise=1.0, seed=4)
    assert retrieval_metrics(embeddings, labels, chunk_size=7) == pytest.approx(
        retrieval_metrics(embeddings, labels, chunk_size=4096), abs=1e-12
    )


def test_query_gallery_retrieval_matches_accuracy_calculator():
    embeddings, labels = clustered_embeddings(n_classes=30, per_class=20, dim=32, noise=1.0, seed=5)
    is_query = np.arange(len(labels)) % 2 == 0
    query, gallery = embeddings[is_query], embeddings[~is_query]
    ours = retrieval_metrics(
        gallery,
        labels[~is_query],
        chunk_size=50,
        query_embeddings=query,
        query_labels=labels[is_query],
    )
    theirs = pml_metrics(query, labels[is_query], gallery, labels[~is_query])
    assert ours["recall@1"] == pytest.approx(theirs["precision_at_1"], abs=1e-6)
    assert ours["r_precision"] == pytest.approx(theirs["r_precision"], abs=1e-6)
    assert ours["map_at_r"] == pytest.approx(theirs["mean_average_precision_at_r"], abs=1e-6)


def test_queries_without_a_match_are_skipped():
    embeddings, labels = clustered_embeddings(n_classes=10, per_class=6, dim=8, noise=1.0, seed=7)
    is_query = np.arange(len(labels)) % 2 == 0
    in_gallery = ~is_query & (labels != 0)  # class 0 only appears among the queries
    query, query_labels = embeddings[is_query], labels[is_query]
    gallery, gallery_labels = embeddings[in_gallery], labels[in_gallery]
    ours = retrieval_metrics(
        gallery, gallery_labels, query_embeddings=query, query_labels=query_labels
    )
    has_match = query_labels != 0
    on_matched_queries = retrieval_metrics(
        gallery,
        gallery_labels,
        query_embeddings=query[has_match],
        query_labels=query_labels[has_match],
    )
    theirs = pml_metrics(query, query_labels, gallery, gallery_labels)
    assert ours == pytest.approx(on_matched_queries)
    assert ours["recall@1"] == pytest.approx(theirs["precision_at_1"], abs=1e-6)
    assert ours["r_precision"] == pytest.approx(theirs["r_precision"], abs=1e-6)
    assert ours["map_at_r"] == pytest.approx(theirs["mean_average_precision_at_r"], abs=1e-6)


def test_query_identical_to_a_reference_is_not_excluded():
    references = np.array([[1.0, 0.0], [0.0, 1.0]])
    metrics = retrieval_metrics(
        references, [0, 1], ks=(1,), query_embeddings=references, query_labels=[0, 1]
    )
    assert metrics == {"recall@1": 1.0, "r_precision": 1.0, "map_at_r": 1.0}


def test_recall_non_decreasing_in_k():
    embeddings, labels = clustered_embeddings(n_classes=50, per_class=6, dim=8, noise=1.5, seed=6)
    ks = (1, 2, 4, 8, 16, 32)
    metrics = retrieval_metrics(torch.as_tensor(embeddings), torch.as_tensor(labels), ks=ks)
    recalls = [metrics[f"recall@{k}"] for k in ks]
    assert recalls == sorted(recalls)
    assert recalls[0] < recalls[-1]


def test_split_retrieval_uses_query_to_gallery_when_the_split_marks_queries():
    from robdml.metrics import split_retrieval_metrics

    # queries 0 and 1 (class 0) are each other's nearest neighbours, but only the gallery
    # (items 2 of class 1 and 3 of class 0) is searched: both find class 1 first
    embeddings = torch.tensor([[1.0, 0.0], [0.99, 0.14], [0.8, 0.6], [0.0, 1.0]])
    labels = torch.tensor([0, 0, 1, 0])
    is_query = torch.tensor([True, True, False, False])
    split = split_retrieval_metrics(embeddings, labels, {"is_query": is_query}, ks=(1,))
    assert split["recall@1"] == 0.0
    everything = split_retrieval_metrics(embeddings, labels, {}, ks=(1,))
    assert everything == retrieval_metrics(embeddings, labels, ks=(1,))
    assert everything["recall@1"] > 0
