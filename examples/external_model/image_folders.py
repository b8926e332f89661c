"""Write a prepared test split as an ImageFolder-style directory (one folder of PNG files per
class), the input the `robdml` command reads, so that the worked example's model can also be
evaluated from the command line.

    python examples/external_model/image_folders.py results/data/glyphs/test.pt results/glyph_images
"""

import argparse
from pathlib import Path

from PIL import Image

from robdml.data.prepared import load_split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("split", help="a prepared split (results/data/<dataset>/test.pt)")
    parser.add_argument("out", type=Path, help="the directory to write")
    args = parser.parse_args()
    split = load_split(args.split)
    for index, (image, label) in enumerate(zip(split["images"], split["labels"], strict=True)):
        folder = args.out / f"{int(label):04d}"  # sorted as the labels, as ImageFolder sorts
        folder.mkdir(parents=True, exist_ok=True)
        pixels = image.permute(1, 2, 0).squeeze(2).numpy()  # grey [H, W] or RGB [H, W, 3]
        Image.fromarray(pixels).save(folder / f"{index:06d}.png")
    print(f"{len(split['labels'])} images in {args.out}")


if __name__ == "__main__":
    main()
