"""Defenses by name. Adding one: a module with a `Defense` subclass, one line here, its
schema entry in workflow/schemas/config.schema.yaml, and a test."""

from robdml.defenses.base import Defense, StepContext
from robdml.defenses.pgd_at import PGDAdversarialTraining
from robdml.defenses.vanilla import Vanilla

DEFENSES: dict[str, type[Defense]] = {
    "vanilla": Vanilla,
    "pgd_at": PGDAdversarialTraining,
}


def build_defense(params: dict) -> Defense:
    """The defense named by `params['method']`, configured with `params`."""
    return DEFENSES[params["method"]](params)


__all__ = ["DEFENSES", "Defense", "StepContext", "build_defense"]
