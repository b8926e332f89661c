"""Clustering-based evaluation of embeddings: k-means with k = number of classes, then NMI, AMI,
ARI and pairwise F1 against the class labels.

NMI alone flatters test sets with many small classes (a random clustering of Stanford Online
Products already scores about 0.5), so evaluate_clustering also reports the NMI of a chance
clustering with the same cluster sizes as a baseline.
"""

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import (
    adjusted_mutual_info_score,
    adjusted_rand_score,
    normalized_mutual_info_score,
)
from sklearn.metrics.cluster import pair_confusion_matrix


def kmeans_assign(
    embeddings: np.ndarray, n_clusters: int, seed: int, n_init: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn KMeans (k-means++, random_state=seed).

    Returns (assignments int64 [N], centroids float32 [k, D]); the centroids are what attacks on
    clustering-based inference push samples towards or away from.
    """
    kmeans = KMeans(n_clusters=n_clusters, init="k-means++", n_init=n_init, random_state=seed)
    kmeans.fit(embeddings)
    return kmeans.labels_.astype(np.int64), kmeans.cluster_centers_.astype(np.float32)


def pairwise_f1(labels: np.ndarray, assignments: np.ndarray) -> float:
    """Pairwise F-measure of a clustering.

    Over all pairs of samples, a pair placed in the same cluster is a true positive if both share
    a class and a false positive otherwise; a same-class pair split across clusters is a false
    negative. F1 is the harmonic mean of the resulting precision and recall. This is the F1 used
    in DML since Song et al., CVPR 2016, 'Deep Metric Learning via Lifted Structured Feature
    Embedding' (their evaluation code), following Manning, Raghavan & Schuetze, 'Introduction to
    Information Retrieval', sec. 16.3. Pair counts come from
    sklearn.metrics.cluster.pair_confusion_matrix (rows: same class?, columns: same cluster?;
    it counts ordered pairs, which doubles every count and leaves the ratios unchanged).
    """
    (_, false_positives), (false_negatives, true_positives) = pair_confusion_matrix(
        labels, assignments
    )
    if true_positives == 0:
        return 0.0
    precision = true_positives / (true_positives + false_positives)
    recall = true_positives / (true_positives + false_negatives)
    return float(2 * precision * recall / (precision + recall))


def clustering_metrics(labels: np.ndarray, assignments: np.ndarray) -> dict[str, float]:
    """NMI (arithmetic average), AMI and ARI from sklearn.metrics, and pairwise F1.

    'f1' is the pairwise F-measure (see pairwise_f1): precision/recall over pairs of samples
    placed in the same cluster vs pairs of the same class, as in Song et al., CVPR 2016 and
    Manning et al., IIR sec. 16.3, computed from sklearn's pair_confusion_matrix.
    """
    return {
        "nmi": float(normalized_mutual_info_score(labels, assignments)),
        "ami": float(adjusted_mutual_info_score(labels, assignments)),
        "ari": float(adjusted_rand_score(labels, assignments)),
        "f1": pairwise_f1(labels, assignments),
    }


def chance_nmi(labels: np.ndarray, assignments: np.ndarray, seed: int, repeats: int = 5) -> float:
    """Mean NMI between the labels and randomly permuted assignments (same cluster sizes).

    This is the NMI a useless clustering reaches: high with hundreds of small clusters (about
    0.51 for 278 clusters of 16), so an NMI is only meaningful relative to it.
    """
    rng = np.random.default_rng(seed)
    scores = [
        normalized_mutual_info_score(labels, rng.permutation(assignments)) for _ in range(repeats)
    ]
    return float(np.mean(scores))


def evaluate_clustering(
    embeddings: np.ndarray,
    labels: np.ndarray,
    seeds: int | list[int],
    n_init: int = 1,
    chance_repeats: int = 5,
) -> dict[str, float]:
    """k-means with k = number of distinct labels on L2-normalised embeddings (the cosine
    geometry used for retrieval), once per seed in `seeds`: clustering_metrics averaged over
    the seeds, their standard deviation as '<metric>_std' (k-means noise, about 0.005 NMI, is
    the size of many defense differences), and 'nmi_chance' (first seed)."""
    seeds = [seeds] if isinstance(seeds, int) else list(seeds)
    embeddings = np.asarray(embeddings, dtype=np.float32)
    normalised = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    n_classes = len(np.unique(labels))
    runs, chance = [], None
    for seed in seeds:
        assignments, _ = kmeans_assign(normalised, n_classes, seed, n_init)
        runs.append(clustering_metrics(labels, assignments))
        if chance is None:
            chance = chance_nmi(labels, assignments, seed, chance_repeats)
    metrics = {key: float(np.mean([run[key] for run in runs])) for key in runs[0]}
    metrics |= {f"{key}_std": float(np.std([run[key] for run in runs])) for key in runs[0]}
    metrics["nmi_chance"] = chance
    return metrics
