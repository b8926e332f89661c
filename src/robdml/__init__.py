"""Adversarially robust deep metric learning: attacks on clustering-based inference, defenses,
and Ensemble Adversarial Training (Ke, arXiv 2501.01025).

The public API (robdml.api): `robdml.evaluate(model, images, labels, eps_255=(8,))` and
`robdml.attack(...)`, imported on first use so that the workflow's torch-free planning
modules (robdml.config, robdml.jobs, robdml.resources) stay torch-free.
"""

__all__ = ["Evaluation", "attack", "evaluate"]


def __getattr__(name: str):
    if name in __all__:
        from robdml import api

        return getattr(api, name)
    raise AttributeError(f"module 'robdml' has no attribute {name!r}")
