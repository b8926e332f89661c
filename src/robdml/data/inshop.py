"""DeepFashion In-shop Clothes Retrieval (Liu et al., 2016): 52,712 photos of 7,982 items.

The benchmark's own partition is used: train (25,882 images, 3,997 items), query (14,218) and
gallery (12,612), the last two sharing 3,985 unseen items. The test split holds query + gallery
with `meta['is_query']` marking the queries: clustering runs on all of them (k = 3,985), while
the benchmark's retrieval protocol ranks the gallery for each query.

Both files are placed by hand:
    img.zip                   img/<MEN|WOMEN>/<category>/<item id>/<file>.jpg
    list_eval_partition.txt   a count line, a header "image_name item_id evaluation_status",
                              then one "img/... id_00000001 train|query|gallery" line per image
"""

from pathlib import Path

import torch

from robdml.data.image_files import ImageSplit

PARTITIONS = ("train", "query", "gallery")


def read_split(raw: Path, extracted: Path, spec: dict) -> ImageSplit:
    """Train images, then query + gallery images as the test split; class = item id."""
    rows = read_partition(raw / "list_eval_partition.txt")
    class_names = sorted({item for _, item, _ in rows})
    class_ids = {item: index for index, item in enumerate(class_names)}
    train = [(image, item) for image, item, partition in rows if partition == "train"]
    test = [(image, item, partition) for image, item, partition in rows if partition != "train"]
    return ImageSplit(
        train_paths=[extracted / image for image, _ in train],
        train_labels=[class_ids[item] for _, item in train],
        test_paths=[extracted / image for image, _, _ in test],
        test_labels=[class_ids[item] for _, item, _ in test],
        class_names=class_names,
        test_meta={"is_query": torch.tensor([partition == "query" for _, _, partition in test])},
    )


def read_partition(path: Path) -> list[tuple[str, str, str]]:
    """(image path, item id, partition) per image, in file order."""
    lines = path.read_text().splitlines()
    rows = [tuple(line.split()) for line in lines[2:] if line.strip()]
    for row in rows:
        if len(row) != 3 or row[2] not in PARTITIONS:
            raise ValueError(f"{path}: expected 'image item_id train|query|gallery', got {row}")
    return rows
