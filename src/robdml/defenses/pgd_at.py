"""PGD adversarial training (Madry et al., ICLR 2018) adapted to DML: train on PGD examples
that maximise the Proxy Anchor loss; `clean_weight` mixes in the clean loss."""

from robdml.defenses.base import Defense


class PGDAdversarialTraining(Defense):
    def loss(self, step, images, labels, mask):
        member, pal = step.members[0], step.pal_losses[0]
        adversarial = step.craft(lambda x: pal(member(x), labels), images, self.params["attack"])
        adversarial_loss = pal(member(adversarial), labels)
        clean_weight = self.params["clean_weight"]
        if clean_weight == 0:
            return adversarial_loss
        return (1 - clean_weight) * adversarial_loss + clean_weight * pal(member(images), labels)
