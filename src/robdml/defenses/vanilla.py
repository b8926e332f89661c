"""No defense: Proxy Anchor loss on clean images."""

from robdml.defenses.base import Defense


class Vanilla(Defense):
    def loss(self, step, images, labels, mask):
        member, pal = step.members[0], step.pal_losses[0]
        return pal(member(images), labels)
