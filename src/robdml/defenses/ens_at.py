"""Naive ensemble of adversarially trained models, the usual baseline of ensemble defenses
(e.g. Pang et al., ICML 2019; Yang et al., NeurIPS 2020): M members, each trained by Madry
PGD adversarial training against itself only, on every sample; inference averages their
embeddings. It is EAT without diversity (`split: none`) and without self-transfer
(`transfer: self`), so it is built as exactly that."""

from robdml.defenses.eat import EnsembleAdversarialTraining


class NaiveEnsembleAdversarialTraining(EnsembleAdversarialTraining):
    def __init__(self, params: dict):
        super().__init__({**params, "split": "none", "transfer": "self"})
