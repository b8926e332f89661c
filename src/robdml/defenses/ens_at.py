"""Ensemble adversarial training baselines: M members, every member sees every sample,
inference averages their embeddings.

- `ens_at`: the literature's ensemble adversarial training, as the DVERGE repository's AdvT
  baseline runs it (Yang et al., NeurIPS 2020; zjysteven/DVERGE, train/train_adv.py): ONE PGD
  batch per step crafted against the whole ensemble, and every member trained on it. Their
  objective is the cross-entropy of the ensemble's averaged softmax; members of a DML ensemble
  have no shared classifier (each has its own proxies), so the batch maximises the mean of the
  members' Proxy Anchor losses. That is EAT without the data split (`split: none`,
  `transfer: ensemble_pal`), so it is built as exactly that.
- `ens_at_independent`: each member trained by PGD-AT against itself only (`split: none`,
  `transfer: self`), the independent variant some papers call the naive ensemble.

With EAT (`split: samples`) and its `eat_selfonly` reading (`transfer: self`) the four form a
2 x 2 design: split or not, shared or own adversarial batch (README "EAT")."""

from robdml.defenses.eat import EnsembleAdversarialTraining


class JointEnsembleAdversarialTraining(EnsembleAdversarialTraining):
    def __init__(self, params: dict):
        super().__init__({**params, "split": "none", "transfer": "ensemble_pal"})


class IndependentEnsembleAdversarialTraining(EnsembleAdversarialTraining):
    def __init__(self, params: dict):
        super().__init__({**params, "split": "none", "transfer": "self"})
