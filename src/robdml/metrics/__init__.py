"""Evaluation metrics: clustering-based inference (k-means + NMI/AMI/ARI/F1) and retrieval."""

from robdml.metrics.clustering import (
    KMEANS_BACKENDS,
    adjusted_mutual_info,
    chance_nmi,
    clustering_metrics,
    evaluate_clustering,
    kmeans_assign,
    pairwise_f1,
)
from robdml.metrics.retrieval import retrieval_metrics, split_retrieval_metrics

__all__ = [
    "KMEANS_BACKENDS",
    "adjusted_mutual_info",
    "chance_nmi",
    "clustering_metrics",
    "evaluate_clustering",
    "kmeans_assign",
    "pairwise_f1",
    "retrieval_metrics",
    "split_retrieval_metrics",
]
