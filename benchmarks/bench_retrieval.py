"""Time robdml's retrieval_metrics against pytorch-metric-learning's AccuracyCalculator.

Both compute precision@1 / Recall@1 and MAP@R on the same seeded embeddings (standard normal
class centre plus --noise times standard normal noise) with exact cosine kNN, so the timings
compare like with like; the script also checks that the two agree. At the default noise of 0.7
the classes are separable in 128-D and both metrics are 1.0; --noise 1.5 gives values below 1
to check agreement on, at the same cost.

    PYTHONPATH=src python benchmarks/bench_retrieval.py --n 10000 --classes 2000 --dim 128
"""

import argparse
import statistics
import time

import torch
from pytorch_metric_learning.distances import CosineSimilarity
from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator
from pytorch_metric_learning.utils.inference import CustomKNN

from robdml.metrics import retrieval_metrics


def structured_embeddings(n: int, n_classes: int, dim: int, noise: float, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    centres = torch.randn(n_classes, dim, generator=generator)
    labels = torch.arange(n) % n_classes
    embeddings = centres[labels] + noise * torch.randn(n, dim, generator=generator)
    return embeddings, labels


def median_seconds(function, repeats: int = 3):
    """Median wall time over repeats, and the last result."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10000, help="number of embeddings")
    parser.add_argument("--classes", type=int, default=2000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--noise", type=float, default=0.7, help="noise scale around class centres")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    embeddings, labels = structured_embeddings(args.n, args.classes, args.dim, args.noise)
    calculator = AccuracyCalculator(
        include=("precision_at_1", "mean_average_precision_at_r"),
        k="max_bin_count",
        knn_func=CustomKNN(CosineSimilarity()),
    )
    ours_s, ours = median_seconds(lambda: retrieval_metrics(embeddings, labels, ks=(1,)))
    pml_s, pml = median_seconds(lambda: calculator.get_accuracy(embeddings, labels))

    agree = abs(ours["recall@1"] - pml["precision_at_1"]) < 1e-6 and (
        abs(ours["map_at_r"] - pml["mean_average_precision_at_r"]) < 1e-6
    )
    print(", ".join(f"{name}={value}" for name, value in vars(args).items()))
    print(f"robdml retrieval_metrics: {ours_s:8.3f} s  {ours}")
    print(f"pml AccuracyCalculator:   {pml_s:8.3f} s  {pml}")
    print(f"ratio pml / robdml: {pml_s / ours_s:.2f}  agree: {agree}")
    if not agree:
        raise SystemExit("results differ")


if __name__ == "__main__":
    main()
