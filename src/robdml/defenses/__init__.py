"""Defenses by name. Adding one (docs/extending.md "Adding a defense, an attack or a dataset"): a
module with a `Defense` subclass, one line here, its cost line in robdml.resources, its schema
entry in workflow/schemas/config.schema.yaml, its defaults in config/config.yaml, and a test."""

from robdml.defenses.act import AntiCollapseTraining
from robdml.defenses.adp import ADP
from robdml.defenses.base import Defense, StepContext
from robdml.defenses.dverge import DVERGE
from robdml.defenses.eat import EnsembleAdversarialTraining
from robdml.defenses.est import EmbeddingShiftTraining
from robdml.defenses.gal import GAL
from robdml.defenses.hm import HardnessManipulation
from robdml.defenses.mart import MART
from robdml.defenses.mixup import Mixup
from robdml.defenses.pgd_at import PGDAdversarialTraining
from robdml.defenses.trades import TRADES
from robdml.defenses.trs import TRS
from robdml.defenses.vanilla import Vanilla

DEFENSES: dict[str, type[Defense]] = {
    "vanilla": Vanilla,
    "pgd_at": PGDAdversarialTraining,
    "trades": TRADES,
    "mart": MART,
    "mixup": Mixup,
    "adp": ADP,
    "gal": GAL,
    "trs": TRS,
    "dverge": DVERGE,
    "est": EmbeddingShiftTraining,
    "act": AntiCollapseTraining,
    "hm": HardnessManipulation,
    "eat": EnsembleAdversarialTraining,
}


def build_defense(params: dict) -> Defense:
    """The defense named by `params['method']`, configured with `params`."""
    return DEFENSES[params["method"]](params)


__all__ = ["DEFENSES", "Defense", "StepContext", "build_defense"]
