"""Retrieval metrics (Recall@K, R-precision, MAP@R) from one exact, chunked top-k on cosine
similarities: each chunk of queries' neighbours, to the depth the largest K or R needs, feeds
every metric.

Why hand-written: pytorch-metric-learning's AccuracyCalculator builds a (classes x samples)
label-match matrix (6.5 GB peak measured for Stanford Online Products' 11,316 classes x 60,502
images) and needs faiss for its default kNN. An exact top-k on the cosine similarity matrix,
computed in torch a chunk of queries at a time, needs only chunk_size x references floats, stays
exact, and runs on whichever device the embeddings are on.

Ties in similarity are broken by torch.topk's order, which is not specified; with float32
embeddings of real data exact ties are rare.
"""

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

# queries per similarity chunk: small enough to keep the evaluation of Stanford Online Products
# (60,502 references) within 1.5 GB, large enough for full-speed products (benchmarks/eval.py
# --size sop: 1.44 GB, 224 s with 512; 1.92 GB, 223 s with 2,048)
QUERY_CHUNK = 512


def _count_in_reference(query_labels: torch.Tensor, reference_labels: torch.Tensor) -> torch.Tensor:
    """Number of reference samples sharing each query's label (0 for labels absent there)."""
    classes, class_sizes = torch.unique(reference_labels, return_counts=True)
    position = torch.searchsorted(classes, query_labels).clamp(max=len(classes) - 1)
    return torch.where(classes[position] == query_labels, class_sizes[position], 0)


def retrieval_metrics(
    embeddings: torch.Tensor | np.ndarray,
    labels,
    ks: Sequence[int] = (1, 2, 4, 8),
    chunk_size: int = QUERY_CHUNK,
    query_embeddings=None,
    query_labels=None,
) -> dict[str, float]:
    """Recall@K for each K in ks ('recall@1', ...), R-precision ('r_precision') and MAP@R
    ('map_at_r').

    Recall@K is the fraction of queries with at least one same-class sample among their K nearest
    neighbours (Recall@1 = precision@1). R-precision and MAP@R (Musgrave, Belongie & Lim, 'A
    Metric Learning Reality Check', ECCV 2020): with R the number of same-class samples in the
    reference set, R-precision = P(R), and AP@R = (1/R) * sum_{i<=R} P(i) * rel(i) over the
    top-R neighbours, each averaged over queries.

    Queries with R = 0 cannot retrieve anything relevant and are skipped by every metric, as in
    pytorch-metric-learning's AccuracyCalculator (standard DML test sets have none).

    Embeddings are L2-normalised here and similarity is their dot product. By default every
    sample queries all the others (itself excluded). With query_embeddings/query_labels given
    (e.g. In-Shop query -> gallery), `embeddings`/`labels` are the references and nothing is
    excluded. Queries are processed chunk_size at a time to bound memory.
    """
    references = F.normalize(torch.as_tensor(embeddings, dtype=torch.float32), dim=1)
    device = references.device
    reference_labels = torch.as_tensor(labels, dtype=torch.int64, device=device)
    exclude_self = query_embeddings is None
    if exclude_self:
        queries, query_labels = references, reference_labels
    else:
        queries = torch.as_tensor(query_embeddings, dtype=torch.float32, device=device)
        queries = F.normalize(queries, dim=1)
        query_labels = torch.as_tensor(query_labels, dtype=torch.int64, device=device)

    relevant_counts = _count_in_reference(query_labels, reference_labels) - int(exclude_self)
    n_scored = int((relevant_counts > 0).sum())
    if n_scored == 0:
        raise ValueError("no query has a same-class sample among the references")
    n_candidates = len(references) - int(exclude_self)
    hits_at_k = torch.zeros(len(ks), dtype=torch.int64, device=device)
    r_precision_sum = torch.zeros((), dtype=torch.float64, device=device)
    ap_sum = torch.zeros((), dtype=torch.float64, device=device)

    for start in range(0, len(queries), chunk_size):
        stop = min(start + chunk_size, len(queries))
        r = relevant_counts[start:stop]
        similarity = queries[start:stop] @ references.T
        if exclude_self:
            rows = torch.arange(stop - start, device=device)
            similarity[rows, start + rows] = -torch.inf
        depth = min(max(max(ks), int(r.max())), n_candidates)
        neighbours = similarity.topk(depth, dim=1).indices
        is_match = reference_labels[neighbours] == query_labels[start:stop, None]

        # A query with R = 0 has no match and AP 0, so it only needs leaving out of n_scored.
        for i, k in enumerate(ks):
            hits_at_k[i] += is_match[:, :k].any(dim=1).sum()

        ranks = torch.arange(1, depth + 1, device=device)
        relevant_in_top_r = is_match & (ranks <= r[:, None])
        precision_at_rank = relevant_in_top_r.cumsum(dim=1) / ranks.to(torch.float64)
        r_precision_sum += (
            relevant_in_top_r.sum(dim=1, dtype=torch.float64) / r.clamp(min=1)
        ).sum()
        ap = (precision_at_rank * relevant_in_top_r).sum(dim=1) / r.clamp(min=1)
        ap_sum += ap.sum()

    metrics = {
        f"recall@{k}": hits / n_scored for k, hits in zip(ks, hits_at_k.tolist(), strict=True)
    }
    metrics["r_precision"] = r_precision_sum.item() / n_scored
    metrics["map_at_r"] = ap_sum.item() / n_scored
    return metrics


def split_retrieval_metrics(
    embeddings: torch.Tensor, labels: torch.Tensor, meta: dict, ks: Sequence[int]
) -> dict[str, float]:
    """Retrieval metrics of a prepared test split: query -> gallery where its `meta` marks the
    queries (In-Shop's `is_query`), else every test image against all the others."""
    if "is_query" not in meta:
        return retrieval_metrics(embeddings, labels, ks=ks)
    query = meta["is_query"]
    return retrieval_metrics(
        embeddings[~query], labels[~query], ks=ks,
        query_embeddings=embeddings[query], query_labels=labels[query],
    )  # fmt: skip
