"""Rule import_external: an embedding model trained elsewhere (config `external_models`) into
the package's model file, after checking its contract on a batch of the test set; every
problem with the entry is one line naming it (robdml.models.external)."""

import argparse
import json
import sys

from robdml.data.prepared import load_split
from robdml.io import DiskFullError, UnreadableFileError
from robdml.models.external import ExternalModelError, import_external
from robdml.runtime import setup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--name", required=True, help="the entry's name in external_models")
    parser.add_argument("--entry", required=True, help="JSON: the entry")
    parser.add_argument("--data", required=True, help="prepared test split")
    parser.add_argument("--model", required=True, help="output: the model file")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    setup(args.threads, "cpu", 0)
    try:
        import_external(
            args.name, json.loads(args.entry), load_split(args.data)["images"], args.model
        )
    except (ExternalModelError, UnreadableFileError, DiskFullError) as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    main()
