"""Rule train: one (dataset, backbone, defense, seed) model; resumes from its checkpoint.

A backbone with ImageNet weights reads them from --weights (fetched beforehand by rule
fetch_weights: training never downloads); a missing file is one message saying how to fetch it,
and so is an unreadable training split or a full disk.
"""

import argparse
import json
import logging
import sys

from robdml.data.datasets import load_training_set
from robdml.fast_path import add_fast_path_options, configure_fast_path, fast_path_settings
from robdml.io import DiskFullError, UnreadableFileError
from robdml.models.weights import MissingWeightsError, WeightsError, check_weights_file
from robdml.runtime import setup
from robdml.training import train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spec", required=True, help="training spec (robdml.specs.train_spec)")
    parser.add_argument("--data", required=True, help="prepared training split")
    parser.add_argument("--model", required=True, help="output: trained model file")
    parser.add_argument("--checkpoint", required=True, help="per-epoch checkpoint (resume)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=1)
    add_fast_path_options(parser)
    parser.add_argument("--weights", help="ImageNet weights file of the backbone, if it has any")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    spec = json.loads(args.spec)
    try:
        check_weights_file(spec["backbone"], args.weights)  # before any work
        device = setup(args.threads, args.device, spec["seed"])
        fast_path = configure_fast_path(device, fast_path_settings(args))
        train_set = load_training_set(args.data, spec["dataset"])
        train(spec, train_set, args.model, args.checkpoint, device, args.weights, fast_path)
    except (MissingWeightsError, WeightsError, UnreadableFileError, DiskFullError) as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    main()
