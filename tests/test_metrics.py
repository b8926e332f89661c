import numpy as np
import pytest
import torch
from pytorch_metric_learning.distances import CosineSimilarity
from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator
from pytorch_metric_learning.utils.inference import CustomKNN
from sklearn.metrics import (
    adjusted_mutual_info_score,
    adjusted_rand_score,
    normalized_mutual_info_score,
)

from robdml.metrics import (
    chance_nmi,
    clustering_metrics,
    evaluate_clustering,
    pairwise_f1,
    retrieval_metrics,
)


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
        include=("precision_at_1", "mean_average_precision_at_r"),
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


def test_evaluate_clustering_recovers_separated_classes():
    embeddings, labels = clustered_embeddings(n_classes=8, per_class=25, dim=16, noise=0.05, seed=1)
    metrics = evaluate_clustering(embeddings, labels, [0], n_init=3)
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
    assert metrics["ami"] == adjusted_mutual_info_score(labels, assignments)
    assert metrics["ari"] == adjusted_rand_score(labels, assignments)


def test_chance_nmi_of_many_small_clusters():
    labels = np.repeat(np.arange(278), 16)
    baseline = chance_nmi(labels, labels, seed=0)
    assert baseline == pytest.approx(0.51, abs=0.02)
    assert baseline < clustering_metrics(labels, labels)["nmi"] - 0.4
    assert chance_nmi(labels, labels, seed=0) == baseline


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
    metrics = retrieval_metrics(embeddings, labels, ks=(1, 2, 4))
    assert metrics == pytest.approx(
        {"recall@1": 2 / 5, "recall@2": 3 / 5, "recall@4": 1.0, "map_at_r": 1 / 5}
    )


def test_retrieval_matches_accuracy_calculator():
    embeddings, labels = clustered_embeddings(n_classes=30, per_class=20, dim=32, noise=1.0, seed=3)
    ours = retrieval_metrics(embeddings, labels)
    theirs = pml_metrics(embeddings, labels)
    assert 0.1 < ours["map_at_r"] < 0.9  # not trivially perfect or hopeless
    assert ours["recall@1"] == pytest.approx(theirs["precision_at_1"], abs=1e-6)
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
    assert ours["map_at_r"] == pytest.approx(theirs["mean_average_precision_at_r"], abs=1e-6)


def test_query_identical_to_a_reference_is_not_excluded():
    references = np.array([[1.0, 0.0], [0.0, 1.0]])
    metrics = retrieval_metrics(
        references, [0, 1], ks=(1,), query_embeddings=references, query_labels=[0, 1]
    )
    assert metrics == {"recall@1": 1.0, "map_at_r": 1.0}


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
