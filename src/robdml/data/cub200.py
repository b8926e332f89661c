"""CUB-200-2011 (Wah et al., 2011): 11,788 photos of 200 bird species.

Deep metric learning (Oh Song et al., 2016; Proxy Anchor) trains on classes 1-100 (5,864 images)
and tests on the unseen classes 101-200 (5,924). The archive's own train_test_split.txt splits
images *within* classes, for classification, and is not used.

Layout inside CUB_200_2011.tgz (metadata lines are "<id> <value>"):
    CUB_200_2011/images.txt               image id -> images/<class folder>/<file>.jpg
    CUB_200_2011/image_class_labels.txt   image id -> class id (1-200)
    CUB_200_2011/classes.txt              class id -> class folder name
    CUB_200_2011/images/...
"""

from pathlib import Path

from robdml.data.image_files import ImageSplit, first_classes_split


def read_split(raw: Path, extracted: Path, spec: dict) -> ImageSplit:
    """Image files and 0-based class ids from the metadata, split by class id."""
    root = extracted / "CUB_200_2011"
    image_files = read_id_table(root / "images.txt")
    image_classes = read_id_table(root / "image_class_labels.txt")
    class_folders = read_id_table(root / "classes.txt")
    class_names = [class_folders[class_id] for class_id in sorted(class_folders, key=int)]
    ids = sorted(image_files, key=int)
    paths = [root / "images" / image_files[image_id] for image_id in ids]
    labels = [int(image_classes[image_id]) - 1 for image_id in ids]
    return first_classes_split(paths, labels, class_names, spec["n_train_classes"])


def read_id_table(path: Path) -> dict[str, str]:
    """Lines "<id> <value>" -> {id: value}."""
    pairs = (line.split(maxsplit=1) for line in path.read_text().splitlines() if line.strip())
    return {key: value.strip() for key, value in pairs}
