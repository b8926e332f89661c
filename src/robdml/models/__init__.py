"""Embedding models, ensembles, and the model file format."""

from robdml.models.embedding import EmbeddingModel, Ensemble
from robdml.models.storage import build_members, load_model, member_generator, save_model

__all__ = [
    "EmbeddingModel",
    "Ensemble",
    "build_members",
    "load_model",
    "member_generator",
    "save_model",
]
