"""Rule cards: a robustness card per evaluated model, trained or external (robdml.cards), JSON
and Markdown, from the long results table, the sanity table and the run's provenance."""

import argparse
import json
from pathlib import Path

import pandas as pd

from robdml.cards import card_markdown, model_card
from robdml.io import atomic_write, write_json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--long", required=True, help="results/tables/long.csv")
    parser.add_argument("--sanity", required=True, help="results/sanity/sanity.csv")
    parser.add_argument("--provenance", required=True, help="results/provenance.json")
    parser.add_argument("--suites", required=True, help="the `attack_suites` config, as JSON")
    parser.add_argument(
        "--cards",
        required=True,
        help="JSON list: {model: its ids, stem: card path without suffix, external: its entry}",
    )
    args = parser.parse_args()
    long = pd.read_csv(args.long, keep_default_na=False, na_values=[""])
    sanity = pd.read_csv(args.sanity, keep_default_na=False)
    provenance = json.loads(Path(args.provenance).read_text())
    for entry in json.loads(args.cards):
        card = model_card(
            long, sanity, json.loads(args.suites), entry["model"], provenance,
            entry.get("external"),
        )  # fmt: skip
        stem = entry["stem"]
        write_json(f"{stem}.json", card)
        atomic_write(f"{stem}.md", lambda tmp, card=card: tmp.write_text(card_markdown(card)))


if __name__ == "__main__":
    main()
