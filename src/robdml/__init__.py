"""Adversarially robust deep metric learning: attacks on clustering-based inference, defenses,
and Ensemble Adversarial Training (Ke, arXiv 2501.01025)."""
