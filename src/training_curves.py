"""Rule training_curves: every trained model's loss per epoch (from its model file's history)
in one figure, results/figures/training_curves.{png,pdf}."""

import argparse
import json
from pathlib import Path

import pandas as pd

from robdml.figures import training_curves
from robdml.io import exit_in_one_line_on_bad_files
from robdml.models.storage import read_model_file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", nargs="+", required=True, help="trained model files")
    parser.add_argument("--ids", required=True, help="JSON list: each model's ids, in order")
    parser.add_argument("--defenses", nargs="+", required=True, help="the run's defense order")
    parser.add_argument("--out-stem", required=True, type=Path, help="writes STEM.png/.pdf")
    args = parser.parse_args()
    rows = []
    for path, ids in zip(args.models, json.loads(args.ids), strict=True):
        history = read_model_file(path)["history"]
        rows += [{**ids, "epoch": epoch["epoch"], "loss": epoch["loss"]} for epoch in history]
    training_curves(pd.DataFrame(rows), args.out_stem, args.defenses)


if __name__ == "__main__":
    exit_in_one_line_on_bad_files(main)
