"""Clustering-based evaluation of embeddings: k-means with k = number of classes, then NMI, AMI,
ARI and pairwise F1 against the class labels.

NMI alone flatters test sets with many small classes (a random clustering of Stanford Online
Products already scores about 0.5), so evaluate_clustering also reports the NMI of a chance
clustering with the same cluster sizes as a baseline.
"""

import numpy as np
import torch
import torch.nn.functional as F
from scipy.special import gammaln
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, mutual_info_score, normalized_mutual_info_score
from sklearn.metrics.cluster import contingency_matrix, pair_confusion_matrix

from robdml.metrics.kmeans import faiss_nearest, import_faiss, kmeans, torch_nearest

KMEANS_BACKENDS = ("sklearn", "torch", "faiss")


def kmeans_assign(
    embeddings: np.ndarray | torch.Tensor,
    n_clusters: int,
    seed: int,
    n_init: int = 1,
    backend: str = "sklearn",
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded k-means (greedy k-means++ seeding, best of n_init runs).

    Returns (assignments int64 [N], centroids float32 [k, D]); the centroids are what attacks on
    clustering-based inference push samples towards or away from. `backend` (config
    `evaluation.kmeans_backend`): 'sklearn' is sklearn.cluster.KMeans (random_state=seed), the
    reference; 'torch' runs the same algorithm in torch on the embeddings' device
    (robdml.metrics.kmeans, several times faster); 'faiss' is 'torch' with faiss's flat index
    for the Lloyd assignment steps (a GPU index where faiss has GPU support and the embeddings
    are on cuda).
    """
    if backend == "sklearn":
        fitted = KMeans(n_clusters=n_clusters, init="k-means++", n_init=n_init, random_state=seed)
        fitted.fit(np.asarray(embeddings))
        return fitted.labels_.astype(np.int64), fitted.cluster_centers_.astype(np.float32)
    if backend == "faiss":
        import_faiss()
    nearest = {"torch": torch_nearest, "faiss": faiss_nearest}[backend]
    return kmeans(torch.as_tensor(embeddings), n_clusters, seed, n_init, nearest)


def expected_mutual_info(class_sizes: np.ndarray, cluster_sizes: np.ndarray) -> float:
    """Expected mutual information of two labelings with these class and cluster sizes under
    random permutation (Vinh, Epps & Bailey, JMLR 2010), the term that AMI subtracts.

    scikit-learn sums it over every (class, cluster) pair (1.6 s for In-Shop-sized labels,
    42 s at Stanford Online Products size). A pair's term depends only on the two sizes, so
    here it is summed over distinct sizes, weighted by how often each occurs: exact, and DML
    test sets have few distinct sizes (5 ms for In-Shop-sized labels).
    """
    n = int(np.sum(class_sizes))
    row_sizes, row_counts = np.unique(class_sizes, return_counts=True)
    col_sizes, col_counts = np.unique(cluster_sizes, return_counts=True)
    if len(row_sizes) > len(col_sizes):
        row_sizes, row_counts, col_sizes, col_counts = col_sizes, col_counts, row_sizes, row_counts
    b = col_sizes[None, :].astype(np.float64)
    emi = 0.0
    for a, a_count in zip(row_sizes.astype(np.float64), row_counts, strict=True):
        nij = np.arange(1, min(a, b.max()) + 1)[:, None]
        # nij runs from max(1, a + b - n) to min(a, b); arguments outside are clipped, masked
        valid = (nij <= b) & (nij >= a + b - n)
        log_term3 = (
            gammaln(a + 1) + gammaln(b + 1) + gammaln(n - a + 1) + gammaln(n - b + 1)
            - gammaln(n + 1) - gammaln(nij + 1) - gammaln(np.maximum(a - nij, 0) + 1)
            - gammaln(np.maximum(b - nij, 0) + 1) - gammaln(np.maximum(n - a - b + nij, 0) + 1)
        )  # fmt: skip
        terms = nij / n * (np.log(n * nij) - np.log(a * b)) * np.exp(log_term3)
        emi += a_count * float(np.where(valid, terms, 0.0).sum(axis=0) @ col_counts)
    return emi


def adjusted_mutual_info(labels: np.ndarray, assignments: np.ndarray) -> float:
    """sklearn.metrics.adjusted_mutual_info_score (arithmetic normalisation, the default, and
    its special cases) with the expected MI of expected_mutual_info: equal to 1e-10."""
    _, class_sizes = np.unique(labels, return_counts=True)
    _, cluster_sizes = np.unique(assignments, return_counts=True)
    if len(class_sizes) == len(cluster_sizes) <= 1:
        return 1.0
    if len(class_sizes) == 1 or len(cluster_sizes) == 1:
        return 0.0
    contingency = contingency_matrix(labels, assignments, sparse=True)
    mi = mutual_info_score(None, None, contingency=contingency)
    emi = expected_mutual_info(class_sizes, cluster_sizes)
    normalizer = (entropy(class_sizes) + entropy(cluster_sizes)) / 2
    eps = np.finfo(np.float64).eps
    # sklearn keeps the sign of both differences and their magnitude at least eps
    denominator = normalizer - emi
    denominator = min(denominator, -eps) if denominator < 0 else max(denominator, eps)
    numerator = mi - emi
    numerator = min(numerator, -eps) if numerator < 0 else max(numerator, eps)
    return float(numerator / denominator)


def entropy(sizes: np.ndarray) -> float:
    """Entropy (nats) of a labeling with these cluster sizes."""
    p = sizes / sizes.sum()
    return float(-(p * np.log(p)).sum())


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
    """NMI (arithmetic average) and ARI from sklearn.metrics, AMI equal to sklearn's (see
    adjusted_mutual_info), and pairwise F1.

    'f1' is the pairwise F-measure (see pairwise_f1): precision/recall over pairs of samples
    placed in the same cluster vs pairs of the same class, as in Song et al., CVPR 2016 and
    Manning et al., IIR sec. 16.3, computed from sklearn's pair_confusion_matrix.
    """
    return {
        "nmi": float(normalized_mutual_info_score(labels, assignments)),
        "ami": adjusted_mutual_info(labels, assignments),
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
    embeddings: np.ndarray | torch.Tensor,
    labels: np.ndarray,
    seeds: int | list[int],
    n_init: int = 1,
    chance_repeats: int = 5,
    backend: str = "sklearn",
) -> dict[str, float]:
    """k-means with k = number of distinct labels on L2-normalised embeddings (the cosine
    geometry used for retrieval), once per seed in `seeds`: clustering_metrics averaged over
    the seeds, their standard deviation as '<metric>_std' (k-means noise, about 0.005 NMI, is
    the size of many defense differences), and 'nmi_chance' (first seed). `backend`: see
    kmeans_assign; 'torch' and 'faiss' cluster on the device of tensor embeddings."""
    seeds = [seeds] if isinstance(seeds, int) else list(seeds)
    if backend == "sklearn":
        embeddings = np.asarray(torch.as_tensor(embeddings).cpu(), dtype=np.float32)
        normalised = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    else:
        normalised = F.normalize(torch.as_tensor(embeddings, dtype=torch.float32), dim=1)
    n_classes = len(np.unique(labels))
    runs, chance = [], None
    for seed in seeds:
        assignments, _ = kmeans_assign(normalised, n_classes, seed, n_init, backend)
        runs.append(clustering_metrics(labels, assignments))
        if chance is None:
            chance = chance_nmi(labels, assignments, seed, chance_repeats)
    metrics = {key: float(np.mean([run[key] for run in runs])) for key in runs[0]}
    metrics |= {f"{key}_std": float(np.std([run[key] for run in runs])) for key in runs[0]}
    metrics["nmi_chance"] = chance
    return metrics
