"""Rule tsne: clean vs adversarial test embeddings of several defenses on a few test classes."""

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from robdml.adversarial import load_adversarial_set
from robdml.data.prepared import load_split
from robdml.embedding import embed
from robdml.figures import tsne_panels
from robdml.io import exit_in_one_line_on_bad_files
from robdml.models import load_model
from robdml.runtime import setup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spec", required=True, help="report.tsne config entry, as JSON")
    parser.add_argument("--models", nargs="+", required=True)
    parser.add_argument("--adversarial", nargs="+", required=True, help="one per --models")
    parser.add_argument("--data", required=True, help="prepared test split")
    parser.add_argument("--out-stem", required=True, type=Path, help="writes STEM.png/.pdf")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    spec = json.loads(args.spec)
    device = setup(args.threads, "cpu", spec["seed"])
    split = load_split(args.data)
    n_test_classes = int(split["labels"].max()) + 1
    if spec["n_classes"] > n_test_classes:
        sys.exit(
            f"error: report.tsne.n_classes: {spec['n_classes']} is more than the "
            f"{n_test_classes} test classes of {args.data}"
        )
    rng = np.random.default_rng(spec["seed"])
    classes = rng.choice(n_test_classes, spec["n_classes"], replace=False)
    shown = torch.from_numpy(np.isin(split["labels"].numpy(), classes))
    clean_images = split["images"][shown]
    panels = []
    for defense, model_path, adversarial_path in zip(
        spec["defenses"], args.models, args.adversarial, strict=True
    ):
        model, _ = load_model(model_path, device)
        adversarial = load_adversarial_set(adversarial_path)["images"][shown]
        panels.append(
            {
                "defense": defense,
                "clean": embed(model, clean_images, 512, device).numpy(),
                "adversarial": embed(model, adversarial, 512, device).numpy(),
                "labels": split["labels"][shown].numpy(),
            }
        )
    tsne_panels(panels, args.out_stem, spec["perplexity"], spec["seed"])


if __name__ == "__main__":
    exit_in_one_line_on_bad_files(main)
