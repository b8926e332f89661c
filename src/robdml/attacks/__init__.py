"""Evaluation attacks by name. Adding one (docs/extending.md "Adding a defense, an attack or a
dataset"): a module with an `Attack` subclass, one line here, its schema entry in
workflow/schemas/config.schema.yaml, its defaults in config/config.yaml, and a test."""

from robdml.attacks.base import Attack, Context
from robdml.attacks.centroid import CentroidAttack
from robdml.attacks.embedding_shift import EmbeddingShiftAttack
from robdml.attacks.mi import MutualInformationAttack
from robdml.attacks.multi_target import MultiTargetAttack
from robdml.attacks.oracle import OracleAttack
from robdml.attacks.pgd import pgd, project
from robdml.attacks.random_target import RandomTargetAttack
from robdml.attacks.refit import RefitAttack

ATTACKS: dict[str, type[Attack]] = {
    "centroid": CentroidAttack,
    "random_target": RandomTargetAttack,
    "multi_target": MultiTargetAttack,
    "refit": RefitAttack,
    "es": EmbeddingShiftAttack,
    "oracle": OracleAttack,
    "mi": MutualInformationAttack,
}


def build_attack(params: dict) -> Attack:
    """The attack named by `params['method']`, configured with `params`."""
    return ATTACKS[params["method"]](params)


__all__ = ["ATTACKS", "Attack", "Context", "build_attack", "pgd", "project"]
