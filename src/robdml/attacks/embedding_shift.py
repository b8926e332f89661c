"""`es` (embedding shift): move the embedding as far as possible from its clean position.
Needs no labels and no clustering."""

from robdml.attacks.base import Attack


class EmbeddingShiftAttack(Attack):
    def objective(self, embeddings, context):
        return (embeddings - context.samples["clean"]).pow(2).sum(dim=1)
