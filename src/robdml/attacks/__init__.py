"""Evaluation attacks by name. Adding one: a module with an `Attack` subclass, one line here,
its schema entry in workflow/schemas/config.schema.yaml, and a test."""

from robdml.attacks.base import Attack
from robdml.attacks.centroid import CentroidAttack
from robdml.attacks.embedding_shift import EmbeddingShiftAttack
from robdml.attacks.oracle import OracleAttack
from robdml.attacks.pgd import pgd, project
from robdml.attacks.random_target import RandomTargetAttack

ATTACKS: dict[str, type[Attack]] = {
    "centroid": CentroidAttack,
    "random_target": RandomTargetAttack,
    "oracle": OracleAttack,
    "es": EmbeddingShiftAttack,
}


def build_attack(params: dict) -> Attack:
    """The attack named by `params['method']`, configured with `params`."""
    return ATTACKS[params["method"]](params)


__all__ = ["ATTACKS", "Attack", "build_attack", "pgd", "project"]
