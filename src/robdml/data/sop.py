"""Stanford Online Products (Oh Song et al., CVPR 2016): 120,053 eBay photos of 22,634
products in 12 super-classes.

The benchmark's own split is used: Ebay_train.txt lists the 59,551 images of the training
products (class ids 1-11,318), Ebay_test.txt the 60,502 images of the 11,316 unseen test
products (11,319-22,634). One zip, placed by hand (or downloaded from a `url` in the config):
    Stanford_Online_Products/Ebay_train.txt, Ebay_test.txt
        a header "image_id class_id super_class_id path", then one line per image
        ("1 1 1 bicycle_final/111085122871_0.JPG"); paths are relative to the folder
    Stanford_Online_Products/<super class>_final/<product>_<n>.JPG
A class is a product, named by its class id.
"""

from pathlib import Path

from robdml.data.image_files import ImageSplit, LayoutError

ROOT = "Stanford_Online_Products"
HEADER = ["image_id", "class_id", "super_class_id", "path"]


def read_split(raw: Path, extracted: Path, spec: dict) -> ImageSplit:
    """Ebay_train.txt's images train, Ebay_test.txt's test; labels are class id - 1."""
    root = extracted / ROOT
    train = read_list(root / "Ebay_train.txt")
    test = read_list(root / "Ebay_test.txt")
    n_classes = max(class_id for class_id, _ in train + test)
    return ImageSplit(
        train_paths=[root / path for _, path in train],
        train_labels=[class_id - 1 for class_id, _ in train],
        test_paths=[root / path for _, path in test],
        test_labels=[class_id - 1 for class_id, _ in test],
        class_names=[str(class_id) for class_id in range(1, n_classes + 1)],
    )


def read_list(path: Path) -> list[tuple[int, str]]:
    """(class id, image path) per line after the header, in file order."""
    if not path.is_file():
        raise LayoutError(f"{path}: missing; the zip holds {ROOT}/Ebay_{{train,test}}.txt")
    lines = [line.split() for line in path.read_text().splitlines() if line.strip()]
    if not lines or lines[0] != HEADER:
        raise LayoutError(f"{path}: expected the header line '{' '.join(HEADER)}'")
    rows = []
    for number, fields in enumerate(lines[1:], start=2):
        if len(fields) != 4 or not fields[1].isdigit() or int(fields[1]) < 1:
            raise LayoutError(f"{path}:{number}: expected '{' '.join(HEADER)}', got {fields}")
        rows.append((int(fields[1]), fields[3]))
    return rows
