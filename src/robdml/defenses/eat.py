"""EAT, ensemble adversarial training: the method of X. Ke, "Towards Adversarially Robust Deep
Metric Learning" (arXiv 2501.01025). The paper says EAT promotes the diversity of the ensemble
and uses a self-transferring mechanism that brings the robustness statistics of the whole
ensemble into the update of every single member; its exact recipe is not available to us, so
each choice below is our reading (docs/method.md "Assumptions"), with the alternatives as options.

- members: M members (`members`), each initialised from its own (seed, member) generators
  (models.storage.member_generator).
- diversity (`split`): `samples` (default) splits the training samples into M class-stratified
  parts (seeded) and member i trains on every part except part i; `classes` makes the parts
  sets of whole classes; `none` lets every member see every sample.
- self-transfer (`transfer`): `ensemble_pal` (default) crafts ONE adversarial batch per step
  against the whole ensemble, maximising the mean of the members' own Proxy Anchor losses
  (each on the samples that member may see; the ensemble mean embedding has no proxies), and
  every member trains on it; `ensemble_shift` crafts that batch by maximising the shift of
  the ensemble mean embedding; `self` has each member craft against itself (independent
  adversarial training); `random_peer` has each member train on examples crafted against a
  randomly drawn peer.
- inference: the mean of the members' embeddings (models.Ensemble), like any ensemble here.

Each member's update uses only the samples its mask allows. With `ensemble_pal`, the batch
coupling of the Proxy Anchor loss lets a peer's view of part i shape the perturbation of a
sample member i does see: member i never receives a part-i image, but the shared batch does
carry the peers' statistics, which is what self-transfer is meant to share.

The ensemble adversarial training baselines are configurations of this class (config/config.yaml
`defenses`), so each choice is declared once:
- `ens_at` (`split: none`, `transfer: ensemble_pal`): the literature's ensemble adversarial
  training as the DVERGE repository's AdvT baseline runs it (Yang et al., NeurIPS 2020;
  zjysteven/DVERGE, train/train_adv.py): ONE PGD batch per step crafted against the whole
  ensemble and every member trained on it. Their objective is the cross-entropy of the
  ensemble's averaged softmax; members of a DML ensemble have no shared classifier (each has
  its own proxies), so the batch maximises the mean of the members' Proxy Anchor losses.
- `ens_at_independent` (`split: none`, `transfer: self`): each member trained by PGD-AT
  against itself only, the independent variant some papers call the naive ensemble.
With EAT (`split: samples`) and `eat_selfonly` (`transfer: self`) the four form a 2 x 2
design: split or not, shared or own adversarial batch.
"""

import torch

from robdml.defenses.base import Defense, eval_mode
from robdml.models.embedding import Ensemble
from robdml.runtime import generator

SHARED_TRANSFERS = ("ensemble_pal", "ensemble_shift")
SPLIT_STREAM = -1  # generator key of the split: epochs use keys >= 0, so none shares it


def split_parts(
    labels: torch.Tensor, n_parts: int, by: str, split_generator: torch.Generator
) -> torch.Tensor:
    """Part (0..n_parts-1) of every sample. `samples`: every class's samples are dealt
    round-robin over the parts in a random order, so each part holds about 1/n_parts of every
    class; `classes`: whole classes are dealt over the parts."""
    if by == "classes":
        classes = torch.unique(labels)
        shuffled = classes[torch.randperm(len(classes), generator=split_generator)]
        part_of_class = torch.empty(int(labels.max()) + 1, dtype=torch.long)
        part_of_class[shuffled] = torch.arange(len(shuffled)) % n_parts
        return part_of_class[labels]
    order = torch.randperm(len(labels), generator=split_generator)
    order = order[torch.sort(labels[order], stable=True).indices]  # by class, shuffled within
    parts = torch.empty(len(labels), dtype=torch.long)
    parts[order] = torch.arange(len(labels)) % n_parts
    return parts


class EnsembleAdversarialTraining(Defense):
    def member_masks(self, labels, seed):
        """Member i may learn from every sample outside part i."""
        if self.params["split"] == "none":
            return super().member_masks(labels, seed)
        split_generator = generator(seed, SPLIT_STREAM)
        parts = split_parts(labels, self.n_members, self.params["split"], split_generator)
        return parts[:, None] != torch.arange(self.n_members)[None, :]

    def shared_adversarial(self, step, images, labels, mask) -> torch.Tensor:
        """The step's one adversarial batch, crafted against the whole ensemble."""
        attack = self.params["attack"]
        if self.params["transfer"] == "ensemble_shift":
            ensemble = Ensemble(step.members)
            with eval_mode(step.members), torch.no_grad():
                clean = ensemble(images)
            return step.craft(lambda x: (ensemble(x) - clean).pow(2).sum(dim=1), images, attack)
        active = [index for index in range(self.n_members) if mask[:, index].any()]

        def mean_member_pal(x: torch.Tensor) -> torch.Tensor:
            losses = [
                step.pal_losses[index](
                    step.members[index](x[mask[:, index]]), labels[mask[:, index]]
                )
                for index in active
            ]
            return sum(losses) / len(losses)

        return step.craft(mean_member_pal, images, attack)

    def craft_against(self, step, source: int, images, labels) -> torch.Tensor:
        """PGD examples for `images` that maximise member `source`'s own Proxy Anchor loss."""
        member, pal = step.members[source], step.pal_losses[source]
        return step.craft(lambda x: pal(member(x), labels), images, self.params["attack"])

    def random_peer(self, step, index: int) -> int:
        """A member other than `index`, drawn from the step generator (itself when alone)."""
        if self.n_members == 1:
            return index
        draw = int(torch.randint(self.n_members - 1, (1,), generator=step.generator))
        return draw + int(draw >= index)

    def loss(self, step, images, labels, mask):
        transfer = self.params["transfer"]
        shared = None
        if transfer in SHARED_TRANSFERS:
            shared = self.shared_adversarial(step, images, labels, mask)
        total = 0
        for index, (member, pal) in enumerate(zip(step.members, step.pal_losses, strict=True)):
            keep = mask[:, index]
            if not keep.any():  # none of this batch is member `index`'s: it contributes 0
                continue
            if shared is not None:
                adversarial = shared[keep]
            else:
                source = index if transfer == "self" else self.random_peer(step, index)
                adversarial = self.craft_against(step, source, images[keep], labels[keep])
            total = total + pal(member(adversarial), labels[keep])
        return total
