"""Offline ``glyphs`` dataset: letters rendered in the fonts that ship with matplotlib.

Deep metric learning needs many classes with a few images each, and the evaluation needs
classes never seen in training. Rendering every Unicode letter that all bundled fonts cover
gives exactly that without any download: a class is a letter, its images are the letter in
16 font styles, and train/test are split by class.

Letters that look alike in every font (Latin ``A`` and Greek ``Α``, ...) are homoglyphs:
keeping them apart would create classes that no embedding can separate, so they are merged
into one class.

Renders depend only on the font files and on Pillow's bundled FreeType, so the output is the
same bytes on every machine with the pinned matplotlib and Pillow.
"""

import unicodedata
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
import torch
from fontTools.ttLib import TTFont
from PIL import Image, ImageDraw, ImageFont

from robdml.data.prepared import train_class_count

# The regular text fonts bundled with matplotlib: DejaVu Sans/Serif/Sans Mono and STIX General
# in four styles each. The STIX *Display* and *NonUni* files are excluded because they hold
# symbols and size variants rather than a full alphabet. The order fixes the image order
# within each class.
FONT_FILES: tuple[str, ...] = (
    "DejaVuSans.ttf",
    "DejaVuSans-Bold.ttf",
    "DejaVuSans-Oblique.ttf",
    "DejaVuSans-BoldOblique.ttf",
    "DejaVuSerif.ttf",
    "DejaVuSerif-Bold.ttf",
    "DejaVuSerif-Italic.ttf",
    "DejaVuSerif-BoldItalic.ttf",
    "DejaVuSansMono.ttf",
    "DejaVuSansMono-Bold.ttf",
    "DejaVuSansMono-Oblique.ttf",
    "DejaVuSansMono-BoldOblique.ttf",
    "STIXGeneral.ttf",
    "STIXGeneralBol.ttf",
    "STIXGeneralItalic.ttf",
    "STIXGeneralBolIta.ttf",
)

SUPPORTED_IMAGE_SIZES = (16, 32)

# Glyphs are always rendered on the largest canvas; smaller sizes are area-downsampled from it
# so that every size shows the same glyph shapes and homoglyphs are judged once, at full detail.
RENDER_SIZE = 32
# A font size of 22 px fills a 32 px canvas with the tallest letters without clipping them.
FONT_SIZE_PER_CANVAS_PIXEL = 22 / 32


@dataclass(frozen=True)
class GlyphSet:
    """Rendered glyph images with their class labels.

    images: uint8 [N, 1, S, S], 0..255, white glyph on black.
    labels: int64 [N], class ids 0..C-1, ordered by the first code point of each class.
    class_names: per class id, the merged characters joined with "/", e.g. "A/Α".
    """

    images: torch.Tensor
    labels: torch.Tensor
    class_names: list[str]


def render_glyphs(image_size: int = 16, merge_threshold: float = 0.002) -> GlyphSet:
    """All classes, deterministic (same bytes every call, every machine with the pinned matplotlib).

    Each class contributes one image per font (in ``FONT_FILES`` order) of its smallest code
    point: the other members of a merged class render near-identically, so their images would
    only add duplicates. ``merge_threshold`` is the mean absolute pixel difference (pixels in
    [0, 1], averaged over all fonts and pixels) below which two letters are homoglyphs.
    """
    if image_size not in SUPPORTED_IMAGE_SIZES:
        raise ValueError(f"image_size must be one of {SUPPORTED_IMAGE_SIZES}, got {image_size}")
    paths = font_paths()
    letters = shared_letters(paths)
    renders = np.stack([render_font(path, letters, RENDER_SIZE) for path in paths], axis=1)
    groups = homoglyph_groups(renders, merge_threshold)

    representatives = renders[[group[0] for group in groups]]  # [classes, fonts, S, S]
    if image_size != RENDER_SIZE:
        representatives = downsample(representatives, RENDER_SIZE // image_size)
    n_classes, n_fonts = representatives.shape[:2]
    images = representatives.reshape(n_classes * n_fonts, 1, image_size, image_size)
    labels = np.repeat(np.arange(n_classes), n_fonts)
    class_names = ["/".join(letters[index] for index in group) for group in groups]
    return GlyphSet(
        images=torch.from_numpy(np.ascontiguousarray(images)),
        labels=torch.from_numpy(labels).to(torch.int64),
        class_names=class_names,
    )


def class_disjoint_split(
    labels: torch.Tensor, n_train_classes: int | None, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Boolean masks (train, test) over samples; no class in both; seeded.

    The class ids are shuffled with ``numpy.random.default_rng(seed)``; the first
    ``n_train_classes`` (default: half, rounded down) are train, the rest test. Splitting by
    class is what makes the test set measure generalisation to unseen classes.
    """
    class_ids = torch.unique(labels).numpy()
    n_train_classes = train_class_count(n_train_classes, len(class_ids))
    shuffled = np.random.default_rng(seed).permutation(class_ids)
    train = torch.isin(labels, torch.from_numpy(shuffled[:n_train_classes]))
    return train, ~train


def font_paths() -> list[Path]:
    """Paths of ``FONT_FILES`` in matplotlib's bundled font folder, failing early if one is gone."""
    font_dir = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    paths = [font_dir / name for name in FONT_FILES]
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(
                f"glyphs dataset needs font file {path.name}, not found in {font_dir}"
            )
    return paths


def shared_letters(paths: list[Path]) -> list[str]:
    """Letters (Unicode category L*) that every font maps, sorted by code point.

    Only letters covered by all fonts give every class the same number of images; a font
    without a glyph would otherwise render a fallback box.
    """
    shared = set.intersection(*(set(TTFont(path).getBestCmap()) for path in paths))
    return [chr(cp) for cp in sorted(shared) if unicodedata.category(chr(cp)).startswith("L")]


def render_font(path: Path, letters: list[str], canvas_size: int) -> np.ndarray:
    """Render each letter centred on a black square canvas; uint8 [letters, S, S].

    Pillow's basic layout engine is pinned because its default, Raqm, is only used where
    libfribidi happens to be installed, and it centres about a sixth of these glyphs one pixel
    differently, which changes the images and which letters merge (555 classes with Raqm, 553
    with the basic engine).
    """
    font_size = round(canvas_size * FONT_SIZE_PER_CANVAS_PIXEL)
    font = ImageFont.truetype(str(path), font_size, layout_engine=ImageFont.Layout.BASIC)
    centre = (canvas_size / 2, canvas_size / 2)
    images = np.empty((len(letters), canvas_size, canvas_size), dtype=np.uint8)
    for index, letter in enumerate(letters):
        canvas = Image.new("L", (canvas_size, canvas_size), 0)
        ImageDraw.Draw(canvas).text(centre, letter, font=font, fill=255, anchor="mm")
        images[index] = np.asarray(canvas)
    return images


def downsample(images: np.ndarray, factor: int) -> np.ndarray:
    """Mean over ``factor`` x ``factor`` pixel blocks of the last two axes, rounded to uint8."""
    *leading, height, width = images.shape
    blocks = images.reshape(*leading, height // factor, factor, width // factor, factor)
    block_sums = blocks.sum(axis=(-3, -1), dtype=np.int64)
    area = factor * factor
    return ((block_sums + area // 2) // area).astype(np.uint8)


def homoglyph_groups(renders: np.ndarray, merge_threshold: float) -> list[list[int]]:
    """Groups of letter indices whose renders differ by less than ``merge_threshold``.

    ``renders`` is uint8 [letters, fonts, S, S]. Merging is transitive (union-find), so a
    chain of look-alikes becomes one class. Groups are sorted internally and ordered by their
    smallest index, which fixes the class ids.
    """
    differences = mean_abs_differences(renders)
    first, second = np.nonzero(np.triu(differences < merge_threshold, k=1))
    parent = list(range(len(renders)))

    def root(index: int) -> int:
        while parent[index] != index:
            parent[index] = parent[parent[index]]
            index = parent[index]
        return index

    for a, b in zip(first.tolist(), second.tolist(), strict=True):
        root_a, root_b = root(a), root(b)
        parent[max(root_a, root_b)] = min(root_a, root_b)
    groups: dict[int, list[int]] = {}
    for index in range(len(renders)):
        groups.setdefault(root(index), []).append(index)
    return sorted(groups.values())


def mean_abs_differences(renders: np.ndarray, chunk_size: int = 64) -> np.ndarray:
    """Pairwise mean absolute pixel difference (pixels scaled to [0, 1]); float64 [n, n].

    Computed in float64 on integer pixel values, so each sum is exact and the comparison with
    the threshold cannot flip between machines. Rows are chunked to bound memory.
    """
    flat = torch.from_numpy(renders.reshape(len(renders), -1)).to(torch.float64)
    abs_sums = torch.cat([torch.cdist(rows, flat, p=1) for rows in flat.split(chunk_size)])
    return (abs_sums / (255.0 * flat.shape[1])).numpy()
