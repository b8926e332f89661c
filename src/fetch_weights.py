"""Rule fetch_weights_file: torchvision's ImageNet weights of one arch as a file, verified.

Copied from torch.hub's cache ($TORCH_HOME/hub/checkpoints) when it holds them, downloaded
otherwise (robdml.models.weights). Progress goes to --log (default: stderr); a failure the user
must act on (unknown weights, wrong hash, unreachable server) is one message on stderr.
"""

import argparse
import logging
import sys

from robdml.data.download import ChecksumError, DownloadError
from robdml.models.weights import WeightsError, fetch_weights


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--arch", required=True, help="torchvision architecture, e.g. resnet50")
    parser.add_argument("--weights", required=True, help="torchvision's name, e.g. IMAGENET1K_V1")
    parser.add_argument("--out", required=True, help="output: the weights file")
    parser.add_argument("--log", help="log file (default: stderr)")
    args = parser.parse_args()
    logging.basicConfig(
        filename=args.log, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
    )
    try:
        fetch_weights(args.arch, args.weights, args.out)
    except (WeightsError, ChecksumError, DownloadError) as error:
        if args.log:
            logging.error("%s", error)
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    main()
