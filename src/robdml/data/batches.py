"""How the trainer cuts an epoch into batches, a defense's choice (its `batches` param, declared
once for every defense method in the config schema's `$defs/shared_defense_params`):

- `random` (the default): shuffled samples.
- `class_pairs`: RobRank's SPC-2 batches (`robrank/datasets/*.py`, `*PairDataset`), consecutive
  pairs (anchor, another image of its class). Triplet defenses need a positive in the batch
  for each anchor: on In-Shop (about 6.5 images per class) a random batch of 180 gives only
  about 4 % of its samples a same-class partner (benchmarks/hm_anchors.py), SPC-2 half of them.

Both are lists of full batches (the last partial batch is dropped: Proxy Anchor batches should
not be tiny) of (sample index, per-sample augmentation seed), all drawn from the epoch's
generator, so a resumed run draws the same batches.
"""

import torch

RANDOM, CLASS_PAIRS = "random", "class_pairs"
KINDS = (RANDOM, CLASS_PAIRS)


def epoch_batches(
    kind: str, labels: torch.Tensor, batch_size: int, epoch_generator: torch.Generator
) -> list[list]:
    """One epoch's batches of the training set with these `labels`, sampled as `kind` says."""
    if kind == RANDOM:
        order = torch.randperm(len(labels), generator=epoch_generator)
        return with_seeds(order, batch_size, epoch_generator)
    if kind == CLASS_PAIRS:
        return class_pair_batches(labels, batch_size, epoch_generator)
    raise ValueError(f"unknown batch sampling {kind!r} (known: {', '.join(KINDS)})")


def class_pair_batches(
    labels: torch.Tensor, batch_size: int, epoch_generator: torch.Generator
) -> list[list]:
    """Batches of batch_size / 2 consecutive pairs (anchor, partner): anchors drawn without
    replacement, each partner uniformly among the other images of its anchor's class. An image
    whose class has no other image cannot be paired and is never drawn (RobRank would pair it
    with itself, and draws a partner from the whole class, the anchor included: a second view
    of one image 1 / class size of the time). Classes may repeat within a batch, as in RobRank.

    An epoch has as many batches as with `random` (N // batch_size, N = len(labels)), so the
    recipe's epochs, schedule and cost stay those of every defense: it draws N / 2 anchors.
    RobRank's epoch makes every image an anchor once (2N images) and halves its SPC-2 losses'
    epochs, which comes to the same number of images over a run."""
    if batch_size < 2 or batch_size % 2:
        raise ValueError(f"class_pairs batches need an even batch_size, not {batch_size}")
    _, classes, sizes = torch.unique(labels, return_inverse=True, return_counts=True)
    grouped = torch.argsort(classes, stable=True)  # the images class by class
    starts = sizes.cumsum(0) - sizes  # where each class begins in `grouped`
    rank = torch.empty_like(grouped)  # each image's place within its class
    rank[grouped] = torch.arange(len(labels)) - starts[classes[grouped]]
    pairable = (sizes[classes] > 1).nonzero().squeeze(1)
    per_batch = batch_size // 2
    n_pairs = min(len(labels) // batch_size, len(pairable) // per_batch) * per_batch
    anchors = pairable[torch.randperm(len(pairable), generator=epoch_generator)[:n_pairs]]
    own = classes[anchors]
    # uniform among the class's other images: a place in 0..size-2, the anchor's own skipped
    uniform = torch.rand(n_pairs, generator=epoch_generator, dtype=torch.float64)
    place = (uniform * (sizes[own] - 1)).long()
    place += place >= rank[anchors]
    partners = grouped[starts[own] + place]
    order = torch.stack([anchors, partners], dim=1).flatten()  # a0, p0, a1, p1, ...
    return with_seeds(order, batch_size, epoch_generator)


def with_seeds(order: torch.Tensor, batch_size: int, epoch_generator: torch.Generator):
    """`order` with a per-sample augmentation seed each, cut into full batches."""
    seeds = torch.randint(0, 2**62, (len(order),), generator=epoch_generator)
    keys = list(zip(order.tolist(), seeds.tolist(), strict=True))
    starts = range(0, len(keys) - batch_size + 1, batch_size)
    return [keys[start : start + batch_size] for start in starts]
