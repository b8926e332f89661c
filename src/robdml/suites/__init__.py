"""Versioned attack suites for `robdml.evaluate`: frozen copies of what a shipped config runs
against every model (its suites' attacks with all their parameters, the evaluation's k-means
and retrieval settings, check (a)'s tolerances and breaking-eps probe), so that a published
number can name the suite it ran and mean the same thing later. A test keeps each file equal
to `suite_from_config` of its config; changing a config's suite means a new version.

- `standard-v2`: `config/config.yaml`'s (the paper grid's) suites;
- `demo-v2`: `config/demo.yaml`'s (the quick demo's: 16 px glyphs, fewer steps where they
  converge).

Earlier versions stay loadable and mean what they meant: `standard-v1` and `demo-v1` are
their v2 without the CPU fast path's batch-norm folding (`fast_path.cpu.fold_batch_norm`).
"""

import json
from pathlib import Path

SUITES = {"standard-v2": "config.yaml", "demo-v2": "demo.yaml"}  # version -> its config
FROZEN = ("standard-v1", "demo-v1")  # earlier versions: loadable, no config's any more
DEFAULT_SUITE = "standard-v2"
FILES = Path(__file__).parent
EVALUATION_KEYS = (
    "kmeans_seeds", "attack_kmeans_seed", "kmeans_n_init", "kmeans_backend", "recall_ks",
    "batch_size", "chance_repeats",
)  # fmt: skip
SANITY_KEYS = (
    "monotone_tolerance", "chance_margin", "breaking_eps_255", "breaking_attacks",
    "stronger_tolerance", "transfer_tolerance",
)  # fmt: skip


class UnknownSuiteError(ValueError):
    """A suite name that is not a shipped version; the message is one line."""


def suite_from_config(config: dict, name: str) -> dict:
    """The suite a resolved config runs: `attack_suites`, the full entry of each of their
    attacks, the evaluation settings (without the eps sweep), check (a)'s settings and the
    fast path per device (`cpu`, `gpu`: channels_last changes summation order, so numbers)."""
    suites = config["attack_suites"]
    attacks = list(dict.fromkeys(suites["label_free"] + suites["label_aware"]))
    return {
        "name": name,
        "attack_suites": {key: list(value) for key, value in suites.items()},
        "attacks": {attack: config["attacks"][attack] for attack in attacks},
        "evaluation": {key: config["evaluation"][key] for key in EVALUATION_KEYS},
        "sanity": {key: config["sanity"][key] for key in SANITY_KEYS},
        "fast_path": {"cpu": config["cpu"], "gpu": config["gpu"]},
    }


def load_suite(name: str) -> dict:
    """A shipped suite by its version name."""
    if name not in (*SUITES, *FROZEN):
        known = ", ".join((*SUITES, *FROZEN))
        raise UnknownSuiteError(f"unknown suite {name!r}: one of {known}")
    return json.loads((FILES / f"{name}.json").read_text())
