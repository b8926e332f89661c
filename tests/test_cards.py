"""Robustness cards: per model, the clean value and each threat model's worst case per eps with
the attack that achieved it (the numbers the tables show), its own sanity checks only, the
threat model and the provenance."""

import pandas as pd
import pytest

from robdml.cards import card_markdown, model_card
from robdml.provenance import run_provenance

SUITES = {"label_free": ["centroid", "random_target"], "label_aware": ["mi"]}
MODEL = {"dataset": "d", "backbone": "b", "defense": "vanilla", "seed": 0}


def record(defense, attack, eps, nmi, threat="whitebox"):
    return {"dataset": "d", "backbone": "b", "defense": defense, "seed": 0, "attack": attack,
            "eps_255": eps, "threat": threat, "source": "", "nmi": nmi, "ari": nmi - 0.5,
            "recall@1": nmi - 0.1, "nmi_chance": 0.5}  # fmt: skip


LONG = pd.DataFrame(
    [
        record("vanilla", "clean", 0, 0.9, "clean"),
        record("vanilla", "centroid", 8, 0.7),
        record("vanilla", "random_target", 8, 0.6),
        record("vanilla", "mi", 8, 0.65),
        record("vanilla", "centroid", 16, 0.55),
        record("vanilla", "random_target", 16, 0.58),
        record("vanilla", "mi", 16, 0.5),
        record("vanilla", "random_target", 8, 0.1, "member"),  # a member alone: no attack on it
        record("eat", "clean", 0, 0.8, "clean"),  # another model
        record("eat", "centroid", 8, 0.2),
    ]
)
SANITY = pd.DataFrame(
    [
        {**MODEL, "threat_model": "label-free", "check": "a: x", "value": "v", "passed": True},
        {**MODEL, "threat_model": "label-aware", "check": "b: y", "value": "w", "passed": False},
        {**MODEL, "defense": "eat", "threat_model": "label-free", "check": "a: x", "value": "u",
         "passed": True},
    ]
)  # fmt: skip


def test_a_card_holds_the_models_clean_and_worst_case_values_with_their_attacks():
    card = model_card(LONG, SANITY, SUITES, MODEL, run_provenance("h"))
    rows = {(r["threat_model"], r["eps_255"]): r for r in card["results"]}
    assert rows[("clean", 0.0)]["nmi"] == {"value": 0.9, "attack": None}
    assert rows[("label-free", 8.0)]["nmi"] == {"value": 0.6, "attack": "random_target"}
    assert rows[("label-free", 16.0)]["nmi"] == {"value": 0.55, "attack": "centroid"}
    assert rows[("label-aware", 16.0)]["nmi"] == {"value": 0.5, "attack": "mi"}
    assert rows[("label-aware", 8.0)]["ari"]["value"] == pytest.approx(0.1)  # 0.6 - 0.5
    assert card["threat_model"]["suites"]["label-aware"] == ["centroid", "random_target", "mi"]
    assert [check["value"] for check in card["sanity"]] == ["v", "w"]  # its own checks only
    assert card["provenance"]["config_hash"] == "h"


def test_the_markdown_card_marks_a_failed_check_and_names_the_commit():
    text = card_markdown(model_card(LONG, SANITY, SUITES, MODEL, run_provenance("h")))
    assert text.startswith("# vanilla (d, b, seed 0)")
    assert "| 8 | label-free | 0.600 (random_target) | 0.100 (random_target) |" in text
    assert "Sanity checks: 2, 1 failed." in text and "- **FAIL**: label-aware b: y: w" in text
    assert "config hash h" in text


def test_an_external_models_card_names_its_factory_and_weights():
    entry = {"factory": "mine/factory.py:build", "weights": "mine/w.pt", "mean": [0.5]}
    card = model_card(LONG, SANITY, SUITES, MODEL, run_provenance("h"), external=entry)
    assert card["external"] == entry
    assert model_card(LONG, SANITY, SUITES, MODEL, run_provenance("h"))["external"] is None
    text = card_markdown(card)
    assert "External model: factory `mine/factory.py:build`, weights `mine/w.pt`" in text
