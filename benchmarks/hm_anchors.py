"""Count HM's anchors per training batch on In-Shop, random batches against class pairs.

HM perturbs and trains on triplets whose anchor has a positive in the batch. The script draws
the trainer's own batches (robdml.data.batches.epoch_batches, the epoch generators of seed 0)
over a label vector with In-Shop's train class sizes and asks HM's own anchor selection
(robdml.defenses.hm.anchors_and_positives) how many anchors each batch gives: random batches
(every sample with another of its class in the batch) against class pairs (RobRank's SPC-2,
the first image of each pair). HM's PGD and update run on the 3T images of T triplets.

Class sizes: In-Shop's train split has 3,997 items and 25,882 images (list_eval_partition.txt).
With --partition PATH the sizes are read from that file (its `train` rows per item id);
without it, an assumption, since the per-item counts are not at hand: every item has at least
two images and 2 + Poisson(25,882 / 3,997 - 2) of them (seeded, then corrected one image at a
time to the exact total). A random batch's anchor count grows with the size-weighted mean class
size, so the script also prints its exact expectation for these sizes (a check on the count)
and for every item having 6 or 7 images (the narrowest distribution with that total).

    PYTHONPATH=src python benchmarks/hm_anchors.py
    PYTHONPATH=src python benchmarks/hm_anchors.py --partition \
        data/inshop/raw/list_eval_partition.txt

Last line: `RESULT random_anchors_per_batch=... class_pairs_anchors_per_batch=... ...`.
"""

import argparse
import statistics
from collections import Counter
from pathlib import Path

import torch

from robdml.data.batches import CLASS_PAIRS, RANDOM, epoch_batches
from robdml.data.inshop import read_partition
from robdml.defenses.hm import anchors_and_positives
from robdml.runtime import generator

N_CLASSES, N_IMAGES = 3997, 25882  # In-Shop train split


def assumed_sizes(seed: int = 0) -> torch.Tensor:
    """2 + Poisson(mean - 2) images per class, corrected to exactly N_IMAGES (module doc)."""
    rng = torch.Generator().manual_seed(seed)
    rate = torch.full((N_CLASSES,), N_IMAGES / N_CLASSES - 2, dtype=torch.float64)
    sizes = 2 + torch.poisson(rate, generator=rng).long()
    while (excess := int(sizes.sum()) - N_IMAGES) != 0:
        candidates = (sizes > 2).nonzero().squeeze(1) if excess > 0 else torch.arange(N_CLASSES)
        pick = candidates[torch.randint(len(candidates), (1,), generator=rng)]
        sizes[pick] -= 1 if excess > 0 else -1
    return sizes


def partition_sizes(path: Path) -> torch.Tensor:
    counts = Counter(item for _, item, split in read_partition(path) if split == "train")
    return torch.tensor(sorted(counts.values()))


def expected_random_anchors(sizes: torch.Tensor, batch_size: int) -> float:
    """Anchors a random batch (B of N images, without replacement) has on average: a sample of
    a class of n images is one unless none of the B - 1 others is of its class, which has the
    probability prod_k (N - n - k) / (N - 1 - k), k = 0..B-2."""
    n, total = sizes.double(), float(sizes.sum())
    k = torch.arange(batch_size - 1, dtype=torch.float64)
    alone = ((total - n[:, None] - k) / (total - 1 - k)).clamp(min=0).prod(dim=1)
    return batch_size * float((n / total * (1 - alone)).sum())


def anchors_per_batch(labels: torch.Tensor, kind: str, batch_size: int, epochs: int) -> list[int]:
    counts = []
    for epoch in range(epochs):
        epoch_generator = generator(0, epoch)
        for batch in epoch_batches(kind, labels, batch_size, epoch_generator):
            batch_labels = labels[[sample for sample, _ in batch]]
            pairs = anchors_and_positives(batch_labels, kind, epoch_generator)
            counts.append(0 if pairs is None else len(pairs[0]))
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=180, help="the In-Shop recipe's")
    parser.add_argument("--epochs", type=int, default=10, help="epochs of batches to count")
    parser.add_argument("--partition", type=Path, help="In-Shop's list_eval_partition.txt")
    args = parser.parse_args()

    sizes = partition_sizes(args.partition) if args.partition else assumed_sizes()
    source = str(args.partition) if args.partition else "assumed 2 + Poisson"
    labels = torch.arange(len(sizes)).repeat_interleave(sizes)
    print(
        f"class sizes ({source}): {len(sizes)} classes, {len(labels)} images, "
        f"min {int(sizes.min())}, median {int(sizes.median())}, max {int(sizes.max())}, "
        f"singletons {int((sizes == 1).sum())}"
    )
    b = args.batch_size
    narrow = torch.tensor([6] * (7 * N_CLASSES - N_IMAGES) + [7] * (N_IMAGES - 6 * N_CLASSES))
    print(
        f"expected, random batches: {expected_random_anchors(sizes, b):.2f} anchors "
        f"(6 or 7 images per class: {expected_random_anchors(narrow, b):.2f})"
    )
    result = {}
    for kind in (RANDOM, CLASS_PAIRS):
        counts = anchors_per_batch(labels, kind, b, args.epochs)
        mean = statistics.fmean(counts)
        print(
            f"{kind}: {len(counts)} batches of {b}, anchors per batch mean {mean:.2f} "
            f"(min {min(counts)}, max {max(counts)}, {100 * mean / b:.1f} % of the batch), "
            f"{3 * mean:.1f} triplet images per PGD step"
        )
        result[f"{kind}_anchors_per_batch"] = f"{mean:.2f}"
        result[f"{kind}_triplet_images"] = f"{3 * mean:.1f}"
    print("RESULT " + " ".join(f"{key}={value}" for key, value in result.items()))


if __name__ == "__main__":
    main()
