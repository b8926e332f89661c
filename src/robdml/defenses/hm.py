"""HM, hardness manipulation (Zhou & Patel, "Enhancing Adversarial Robustness for Deep Metric
Learning", CVPR 2022, arXiv 2203.01439; official code RobRank, cdluminate/robrank:
`robrank/defenses/amd.py`, `MadryInnerMax.HardnessManipulate` and `hm_training_step`).

Instead of the hardest adversarial triplet (which collapses DML training), HM perturbs each
training triplet only until its hardness H(a, p, n) = d(a, p) - d(a, n) reaches a chosen
level: on the clean embeddings it mines *source* triplets and a *destination* hardness H_d
for the same anchors (the hardness of triplets mined more harshly, or the gradual
adversary's pseudo-hardness); PGD on the three images of every source triplet (sign steps,
from the clean images) descends a meta-loss between the source hardness vector H_s and H_d;
the model then trains on the perturbed triplets. ICS adds a margin-0 triplet term (clean
anchor, adversarial anchor, clean positive): an anchor's adversarial copy must stay nearer
to it than its positive.

Variant: the one RobRank's README calls "HM" and the CVPR 2022 paper recommends, `ghmetsmi` =
HM[S, g_LGA] & ICS: source softhard, destination the linear gradual adversary, meta-loss ET,
ICS. RobRank's other choices are params: sources/destinations random, semihard, softhard,
hard (its spc2-* miners; the distance-weighted miner is not implemented), meta-losses KL, L2.

Definitions as RobRank computes them (metric 'N': Euclidean distance of L2-normalised
embeddings, torch's `pairwise_distance`; margin m = `triplet_margin`):
  ET   mean(min(0, H_s - H_d)^2): only triplets easier than their destination move.
  L2   mean((H_s - H_d)^2).
  KL   F.kl_div(H_s / |H_s|_1, H_d / |H_d|_1, reduction='mean'): both L1-normalised over the
       batch, H_s where kl_div expects log-probabilities. Its value is NaN once H_d has a
       negative entry (the target's x log x), its input gradient is finite, and sign steps
       use only that. RobRank's model generator keeps ET alone ("l2 and kl do not work").
  LGA  H_d = -gradual_scale * clip(l, 0, m) / m for every triplet, l the previous step's mean
       triplet loss (margin m) on the perturbed triplets; -gradual_scale before any step
       (RobRank starts l at 2.0 > m). RobRank hard-codes gradual_scale 0.2 (`destH = -0.2 *
       nrmloss`) and takes m from `configs.triplet.margin_cosine` = 0.2.
  ICS  ics_weight * mean(max(0, d(a, a_adv) - d(a, p))), a and p clean and in train mode, with
       their gradients; RobRank's lambda is 0.5 (`icslambda`).
  When source == destination RobRank does not perturb (regular training, a boundary case).

Differences from RobRank, with their reasons:
- The update's loss is member 0's Proxy Anchor loss on the 3T perturbed images with their
  labels (plus ICS), not the triplet loss: every defense here trains Proxy Anchor models.
- Batches: the config's HM samples RobRank's SPC-2 batches (`batches: class_pairs`,
  `robdml.data.batches`): the anchors are the first image of each pair and their positives
  its partner, T = N/2 and a PGD step runs on 1.5N images, as in RobRank. The sampler's
  differences: a partner is another image of the class (RobRank's may be the anchor's own
  image, a second view of it), an image whose class has no other is never drawn, and an epoch
  is half of RobRank's (N images; RobRank halves its SPC-2 losses' epochs). With random
  batches (`batches: random`) every sample with another sample of its class in the batch is
  an anchor, its positive a random one of those, the rest are skipped: on In-Shop about 4 %
  of a batch of 180 (benchmarks/hm_anchors.py), up to 3N images per PGD step; a batch
  without any anchor trains on the clean Proxy Anchor loss. Either way the positive is
  shared by the source and the destination triplets, as SPC-2's pair is (softhard mines its
  own, never the anchor itself: RobRank's candidates include it); all draws come from
  `step.generator`.
- The gradual adversary follows the triplet loss on the perturbed triplets (computed without
  gradient, not trained on), so that m keeps its meaning; the Proxy Anchor loss has another
  scale. Its memory lasts one StepContext, i.e. one epoch of `robdml.training.train`, and
  restarts at -gradual_scale: checkpoints are written per epoch and hold no defense state,
  so a resumed run equals an uninterrupted one. RobRank carries it across epochs (here the
  first step of every epoch starts over).
- PGD is `robdml.attacks.pgd` with step eps x step_fraction, also for one step (RobRank steps
  eps when pgditer is 1), and without RobRank's stop once the meta-loss changes by < 1e-7,
  which only saves time (where it fires, e.g. ET at 0, the gradient and the step are zero).
"""

import torch
import torch.nn.functional as F

from robdml.attacks.pgd import pgd
from robdml.data.batches import CLASS_PAIRS
from robdml.defenses.base import Defense, StepContext, eval_mode
from robdml.threat_model import radius

MINERS = ("random", "semihard", "softhard", "hard")
Triplets = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def hardness(anchors: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor):
    """Per-triplet hardness d(a, p) - d(a, n): above 0 the triplet is wrongly ordered."""
    return F.pairwise_distance(anchors, positives) - F.pairwise_distance(anchors, negatives)


def meta_loss(source: torch.Tensor, destination: torch.Tensor, kind: str) -> torch.Tensor:
    """RobRank's loss between the source and the destination hardness vectors (module doc)."""
    if kind == "et":
        return (source - destination).clamp(max=0).square().mean()
    if kind == "l2":
        return (source - destination).square().mean()
    if kind == "kl":  # F.kl_div(s, d, reduction='mean') written out: xlogy(d, d) - d * s
        s, d = F.normalize(source, p=1, dim=0), F.normalize(destination, p=1, dim=0)
        return (torch.xlogy(d, d) - d * s).mean()
    raise ValueError(f"unknown meta-loss {kind!r}")


def gradual_destination(previous_loss: float | None, margin: float, scale: float) -> float:
    """The linear gradual adversary's pseudo-hardness: -scale while the triplet loss is at or
    above the margin (or unknown), rising linearly to 0 as it falls to 0."""
    if previous_loss is None:
        return -scale
    return -scale * min(max(previous_loss, 0.0), margin) / margin


def intra_class_structure(
    clean_anchors: torch.Tensor, adversarial_anchors: torch.Tensor, clean_positives: torch.Tensor
) -> torch.Tensor:
    """ICS: mean max(0, d(a, a_adv) - d(a, p)), RobRank's triplet loss with margin 0 (torch's
    `triplet_margin_loss` now refuses margin 0)."""
    return hardness(clean_anchors, adversarial_anchors, clean_positives).relu().mean()


def triplet_loss(anchors, positives, negatives, margin: float) -> torch.Tensor:
    """Mean max(0, d(a, p) - d(a, n) + margin): torch's `triplet_margin_loss`, as RobRank's."""
    return (hardness(anchors, positives, negatives) + margin).relu().mean()


def random_choice(candidates: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One uniformly drawn True column per row of the bool [rows, N] `candidates`."""
    drawn = torch.multinomial(candidates.float().cpu(), 1, generator=generator)
    return drawn.squeeze(1).to(candidates.device)


def mine(
    method: str,
    embeddings: torch.Tensor,
    labels: torch.Tensor,
    anchors: torch.Tensor,
    positives: torch.Tensor,
    margin: float,
    generator: torch.Generator,
) -> Triplets:
    """(anchors, positives, negatives) for RobRank's spc2-`method` miner on clean embeddings;
    `positives` are the random ones (softhard replaces them). Where no negative meets the
    miner's condition, a random negative is taken (as RobRank does)."""
    rows = torch.cdist(embeddings[anchors], embeddings)  # [T, N]
    same = labels[anchors, None] == labels[None, :]
    other = ~same
    if method == "hard":
        return anchors, positives, rows.masked_fill(same, torch.inf).argmin(dim=1)
    if method == "random":
        candidates = other
    elif method == "semihard":  # d(a, p) < d(a, n) < d(a, p) + margin
        positive = rows.gather(1, positives[:, None])
        candidates = other & (rows > positive) & (rows < positive + margin)
    elif method == "softhard":  # negatives nearer than the farthest positive, and vice versa
        same_others = same & (torch.arange(len(labels), device=labels.device) != anchors[:, None])
        farthest_positive = rows.masked_fill(~same_others, -torch.inf).amax(dim=1, keepdim=True)
        candidates = other & (rows < farthest_positive)
    else:
        raise ValueError(f"unknown miner {method!r}")
    candidates = torch.where(candidates.any(dim=1, keepdim=True), candidates, other)
    negatives = random_choice(candidates, generator)
    if method == "softhard":
        nearest_negative = rows.masked_fill(same, torch.inf).amin(dim=1, keepdim=True)
        soft = same_others & (rows > nearest_negative)
        positives = random_choice(
            torch.where(soft.any(dim=1, keepdim=True), soft, same_others), generator
        )
    return anchors, positives, negatives


def anchors_and_positives(
    labels: torch.Tensor, batches: str, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(anchors, positives) of a batch sampled as `batches`. Class pairs: RobRank's SPC-2, the
    first image of each pair and its partner. Random: every sample with another sample of its
    class in the batch, and one of those drawn at random; None when no sample has one."""
    if batches == CLASS_PAIRS:
        anchors = torch.arange(0, len(labels), 2, device=labels.device)
        if len(labels) % 2 or (labels[anchors] != labels[anchors + 1]).any():
            raise ValueError("HM with class_pairs batches got a batch of other than class pairs")
        return anchors, anchors + 1
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    same_others = (labels[:, None] == labels[None, :]) & ~eye
    anchors = same_others.any(dim=1).nonzero().squeeze(1)
    if len(anchors) == 0:
        return None
    return anchors, random_choice(same_others[anchors], generator)


class HardnessManipulation(Defense):
    def __init__(self, params: dict):
        super().__init__(params)
        self._memory: tuple[StepContext, float] | None = None  # gradual adversary's last loss

    def previous_loss(self, step: StepContext) -> float | None:
        """The triplet loss of this StepContext's previous call (None at its first)."""
        if self._memory is not None and self._memory[0] is step:
            return self._memory[1]
        return None

    def triplets(
        self, step: StepContext, embeddings: torch.Tensor, labels: torch.Tensor
    ) -> tuple[Triplets, torch.Tensor] | None:
        """Source triplets and the destination hardness [T] from clean embeddings; None
        when no sample of the batch has a positive."""
        pairs = anchors_and_positives(labels, self.batches, step.generator)
        if pairs is None:
            return None
        anchors, positives = pairs
        margin = self.params["triplet_margin"]
        args = (embeddings, labels, anchors, positives, margin, step.generator)
        source = mine(self.params["source"], *args)
        if self.params["destination"] == "gradual":
            value = gradual_destination(
                self.previous_loss(step), margin, self.params["gradual_scale"]
            )
            destination = torch.full((len(anchors),), value, device=embeddings.device)
        else:
            a, p, n = mine(self.params["destination"], *args)
            destination = hardness(embeddings[a], embeddings[p], embeddings[n])
        return source, destination

    def manipulate(
        self, step: StepContext, images: torch.Tensor, source: Triplets, destination: torch.Tensor
    ) -> torch.Tensor:
        """The 3T images [anchors; positives; negatives] of `source`, perturbed so that their
        hardness approaches `destination` (PGD descending the meta-loss, from the clean images)."""
        member = step.members[0]
        clean = images[torch.cat(source)]
        if self.params["source"] == self.params["destination"]:
            return clean.detach().clone()  # RobRank: nothing to manipulate
        t, kind = len(source[0]), self.params["meta_loss"]

        def closeness(x: torch.Tensor) -> torch.Tensor:  # pgd ascends: minus the meta-loss
            e = member(x)
            return -meta_loss(hardness(e[:t], e[t : 2 * t], e[2 * t :]), destination, kind)

        attack = self.params["attack"]
        ball = radius(attack["eps_255"])
        with eval_mode([member]):
            return pgd(
                closeness, clean, ball, ball * attack["step_fraction"], attack["steps"], None
            )

    def loss(self, step, images, labels, mask):
        member, pal = step.members[0], step.pal_losses[0]
        with eval_mode([member]), torch.no_grad():
            clean = member(images)
        mined = self.triplets(step, clean, labels)
        if mined is None:  # no anchor has a positive: nothing to manipulate
            return pal(member(images), labels)
        source, destination = mined
        adversarial = self.manipulate(step, images, source, destination)
        t, weight = len(source[0]), self.params["ics_weight"]
        if weight > 0:  # RobRank's order: the clean anchors and positives go first
            clean_pairs = member(images[torch.cat(source[:2])])
        embeddings = member(adversarial)
        loss = pal(embeddings, labels[torch.cat(source)])
        anchors, positives, negatives = embeddings[:t], embeddings[t : 2 * t], embeddings[2 * t :]
        if self.params["destination"] == "gradual":
            with torch.no_grad():
                triplet = triplet_loss(anchors, positives, negatives, self.params["triplet_margin"])
            self._memory = (step, triplet.item())
        if weight > 0:
            loss = loss + weight * intra_class_structure(clean_pairs[:t], anchors, clean_pairs[t:])
        return loss
