"""Time the evaluation (k-means clustering metrics + retrieval metrics) of one embedded test set:
robdml with each k-means backend, pytorch-metric-learning's AccuracyCalculator with faiss, and
a floor.

- robdml-<backend>: evaluate_clustering (one k-means seed: NMI, AMI, ARI, F1, chance NMI) and
  retrieval_metrics (R@1/2/4/8, R-precision, MAP@R), as robdml.evaluation runs them;
- pml: AccuracyCalculator(NMI, AMI, precision_at_1, r_precision, mean_average_precision_at_r)
  with its defaults: faiss kNN, faiss.Kmeans(niter=20) seeded with k random points;
- floor: the two big products alone, faiss.Kmeans(niter=20) and one chunked cosine
  similarity + top-k pass in torch, no metric.

All run on the same seeded synthetic embeddings (a standard normal centre per class plus
--noise times standard normal noise, L2-normalised, 512-D), each method in its own
subprocess with the same thread count, so that the peak resident memory reported is that
method's (it includes the interpreter, the imports and the embeddings). Sizes: inshop (In-Shop's
test set, 14,218 images of 3,985 classes), sop (Stanford Online Products', 60,502 of 11,316)
and tiny, for a quick check. The last line sums it up for the fastest robdml backend other than
sklearn; values_equal says whether its retrieval values equal pml's (to 1e-9).

--phases times the parts instead, in this process: the `torch` backend's greedy k-means++
seeding (and its distance rows against the k x (2 + ln k) the algorithm scores) and Lloyd
iterations, the retrieval pass, and the floor's faiss k-means (with the iterations it ran) and
similarity pass: where the time goes, and what bounds the ratio to the floor.

    PYTHONPATH=src python benchmarks/eval.py --size tiny
    PYTHONPATH=src python benchmarks/eval.py --size inshop --phases
"""

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np
import torch
from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator
from threadpoolctl import threadpool_limits

from robdml.metrics import evaluate_clustering, kmeans, retrieval_metrics

SIZES = {"tiny": (2000, 500), "inshop": (14218, 3985), "sop": (60502, 11316)}
DIM = 512
RETRIEVAL = {"recall@1": "precision_at_1", "r_precision": "r_precision",
             "map_at_r": "mean_average_precision_at_r"}  # fmt: skip


def synthetic_embeddings(n: int, n_classes: int, noise: float, seed: int = 0):
    """Unit-norm class centre + noise embeddings (float32 [n, DIM]) and labels (int64 [n])."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % n_classes
    centres = rng.standard_normal((n_classes, DIM), dtype=np.float32)
    embeddings = centres[labels] + noise * rng.standard_normal((n, DIM), dtype=np.float32)
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    return embeddings, labels


def run_robdml(embeddings, labels, backend: str) -> dict:
    values = evaluate_clustering(embeddings, labels, [0], backend=backend)
    return values | retrieval_metrics(torch.from_numpy(embeddings), torch.from_numpy(labels))


def run_pml(embeddings, labels) -> dict:
    calculator = AccuracyCalculator(
        include=("NMI", "AMI", *RETRIEVAL.values()), k="max_bin_count", device=torch.device("cpu")
    )
    values = calculator.get_accuracy(torch.from_numpy(embeddings), torch.from_numpy(labels))
    return {"nmi": values["NMI"], "ami": values["AMI"]} | {
        ours: values[theirs] for ours, theirs in RETRIEVAL.items()
    }


def floor_kmeans(embeddings, labels) -> faiss.Kmeans:
    clustering = faiss.Kmeans(DIM, len(np.unique(labels)), niter=20, seed=0)
    clustering.train(embeddings)
    clustering.index.search(embeddings, 1)
    return clustering


def floor_similarity_pass(embeddings, labels) -> None:
    depth = int(np.bincount(labels).max())
    points = torch.from_numpy(embeddings)
    for start in range(0, len(points), 2048):
        similarity = points[start : start + 2048] @ points.T
        rows = torch.arange(len(similarity))
        similarity[rows, start + rows] = -torch.inf
        similarity.topk(depth, dim=1)


def run_floor(embeddings, labels) -> dict:
    floor_kmeans(embeddings, labels)
    floor_similarity_pass(embeddings, labels)
    return {}


def phases(embeddings, labels, threads: int) -> None:
    """Seconds of each part of the torch backend's evaluation and of the floor, one process."""
    torch.set_num_threads(threads)
    faiss.omp_set_num_threads(threads)
    threadpool_limits(threads)
    points, n_classes = torch.from_numpy(embeddings), len(np.unique(labels))
    rows = []

    def counted(points_, point_sq, which):
        rows.append(len(which))
        return distance_rows(points_, point_sq, which)

    distance_rows, kmeans.squared_distances = kmeans.squared_distances, counted
    try:
        started = time.perf_counter()
        seeds = kmeans.kmeans_plusplus(points, n_classes, torch.Generator().manual_seed(0))
        seeded = time.perf_counter()
    finally:
        kmeans.squared_distances = distance_rows
    tol = kmeans.TOL * points.var(dim=0, correction=0).mean().item()
    kmeans.lloyd(points, points[seeds], kmeans.torch_nearest, tol)
    clustered = time.perf_counter()
    retrieval_metrics(points, torch.from_numpy(labels))
    retrieved = time.perf_counter()
    iterations = len(floor_kmeans(embeddings, labels).obj)
    floor_clustered = time.perf_counter()
    floor_similarity_pass(embeddings, labels)
    floor_retrieved = time.perf_counter()
    scored = n_classes * (2 + int(math.log(n_classes)))
    ours = {"seeding": seeded - started, "lloyd": clustered - seeded,
            "retrieval": retrieved - clustered}  # fmt: skip
    floor = {"kmeans": floor_clustered - retrieved, "similarity": floor_retrieved - floor_clustered}
    print(f"torch backend: seeding {ours['seeding']:.2f} s ({sum(rows)} distance rows, "
          f"{scored} scored by greedy k-means++), Lloyd {ours['lloyd']:.2f} s, retrieval "
          f"{ours['retrieval']:.2f} s")  # fmt: skip
    print(
        f"floor: faiss k-means {floor['kmeans']:.2f} s ({iterations} iterations run), "
        f"similarity pass {floor['similarity']:.2f} s"
    )
    print(
        f"RESULT phases seeding_s={ours['seeding']:.2f} lloyd_s={ours['lloyd']:.2f}"
        f" retrieval_s={ours['retrieval']:.2f} floor_s={sum(floor.values()):.2f}"
        f" seeding_vs_floor={ours['seeding'] / sum(floor.values()):.2f}"
    )


def worker(method: str, data: Path, threads: int) -> None:
    """One method in this process: print its seconds, peak memory and values as JSON."""
    torch.set_num_threads(threads)
    faiss.omp_set_num_threads(threads)
    threadpool_limits(threads)
    embeddings, labels = np.load(data / "embeddings.npy"), np.load(data / "labels.npy")
    started = time.perf_counter()
    if method.startswith("robdml-"):
        values = run_robdml(embeddings, labels, method.removeprefix("robdml-"))
    else:
        values = {"pml": run_pml, "floor": run_floor}[method](embeddings, labels)
    seconds = time.perf_counter() - started
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
    print(json.dumps({"seconds": seconds, "peak_gb": peak_gb, "values": values}))


def run_method(method: str, data: Path, threads: int) -> dict:
    env = os.environ | {name: str(threads) for name in
                        ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}  # fmt: skip
    command = [sys.executable, __file__, "--worker", method, "--data", str(data),
               "--threads", str(threads)]  # fmt: skip
    child = subprocess.run(command, capture_output=True, text=True, env=env)
    if child.returncode:
        raise SystemExit(f"{method} failed:\n{child.stderr[-3000:]}")
    return json.loads(child.stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=SIZES, default="inshop")
    parser.add_argument("--noise", type=float, default=2.0, help="noise scale around centres")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--backends", nargs="+", default=["torch", "faiss", "sklearn"])
    parser.add_argument("--phases", action="store_true", help="time the parts, one process")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.data, args.threads)
        return

    n, n_classes = SIZES[args.size]
    if args.phases:
        phases(*synthetic_embeddings(n, n_classes, args.noise), args.threads)
        return
    print(f"size={args.size} ({n} images, {n_classes} classes, {DIM}-D), noise={args.noise}, "
          f"threads={args.threads}")  # fmt: skip
    methods = [f"robdml-{backend}" for backend in args.backends] + ["pml", "floor"]
    with tempfile.TemporaryDirectory() as folder:
        embeddings, labels = synthetic_embeddings(n, n_classes, args.noise)
        np.save(Path(folder) / "embeddings.npy", embeddings)
        np.save(Path(folder) / "labels.npy", labels)
        results = {method: run_method(method, Path(folder), args.threads) for method in methods}

    columns = ["nmi", "ami", *RETRIEVAL]
    print(
        f"{'method':16s} {'seconds':>8s} {'peak GB':>8s} " + " ".join(f"{c:>11s}" for c in columns)
    )
    for method, result in results.items():
        values = " ".join(
            f"{result['values'][c]:11.6f}" if c in result["values"] else f"{'-':>11s}"
            for c in columns
        )
        print(f"{method:16s} {result['seconds']:8.2f} {result['peak_gb']:8.2f} {values}")

    fast = [f"robdml-{b}" for b in args.backends if b != "sklearn"] or [
        f"robdml-{args.backends[0]}"
    ]
    best = min(fast, key=lambda method: results[method]["seconds"])
    ours, pml, floor = results[best], results["pml"], results["floor"]
    difference = max(abs(ours["values"][c] - pml["values"][c]) for c in RETRIEVAL)
    print(f"{best}: retrieval values differ from pml's by at most {difference:.1e}")
    print(
        f"RESULT size={args.size} backend={best.removeprefix('robdml-')}"
        f" speedup_vs_pml={pml['seconds'] / ours['seconds']:.2f}"
        f" floor_ratio={ours['seconds'] / floor['seconds']:.2f}"
        f" peak_gb={ours['peak_gb']:.2f} values_equal={'yes' if difference <= 1e-9 else 'no'}"
    )


if __name__ == "__main__":
    main()
