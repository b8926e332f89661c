"""Figures: every one written as PNG and PDF, each defense with one colour, marker and dash in
every figure (readable in grayscale), metric axes set from the data (not from 0), the figure
names the workflow expects."""

import ast
import json
import re
import subprocess
import sys

import matplotlib.colors
import pandas as pd
import pytest
from result_toys import GRID, SUITES, grid_results, write_benchmark

from conftest import REPO
from robdml.figures import (
    cost_bars,
    defense_styles,
    metric_vs_eps,
    nmi_by_defense,
    tradeoff,
    training_curves,
)
from robdml.grid import load_results
from robdml.job_costs import cost_frame

ORDER = ["vanilla", "pgd_at", "eat"]


def figure_names() -> list[str]:
    """FIGURE_NAMES of workflow/rules/common.smk: what the figures rule must write."""
    text = (REPO / "workflow/rules/common.smk").read_text()
    return ast.literal_eval(re.search(r"^FIGURE_NAMES = (\[.*?\])", text, re.S | re.M)[1])


def assert_written(stem):
    png, pdf = stem.with_suffix(".png"), stem.with_suffix(".pdf")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 5000


@pytest.fixture
def long(tmp_path):
    return load_results(grid_results(tmp_path))


def drawn_styles(figure) -> dict[str, tuple]:
    """Legend label -> (colour, marker, line style) of the figure's legends."""
    styles = {}
    for legend in figure.legends:
        for handle, text in zip(legend.legend_handles, legend.get_texts(), strict=True):
            if hasattr(handle, "get_marker"):
                colour = matplotlib.colors.to_rgba(handle.get_color())
                styles[text.get_text()] = (colour, handle.get_marker())
    return styles


def test_each_defense_keeps_its_colour_and_marker_in_every_figure(long, tmp_path):
    styles = defense_styles(ORDER + ["mixup"])
    figures = [
        nmi_by_defense(long, 8, SUITES, tmp_path / "bars", ORDER + ["mixup"]),
        metric_vs_eps(long, "nmi", SUITES, tmp_path / "nmi", ORDER + ["mixup"]),
        tradeoff(long, 8, SUITES, tmp_path / "tradeoff", ORDER + ["mixup"]),
    ]
    for figure in figures:
        drawn = drawn_styles(figure)
        for defense in ORDER:  # mixup has no results: not drawn, but keeps its place
            expected = styles[defense]
            assert drawn[defense] == (matplotlib.colors.to_rgba(expected["color"]),
                                      expected["marker"])  # fmt: skip
        assert "mixup" not in drawn
    # the style follows the position in the run's order, not the data
    assert defense_styles(["eat", "vanilla"])["eat"] == defense_styles(["eat", "x"])["eat"]


def test_styles_are_distinct_and_readable_in_grayscale():
    defenses = [f"d{i}" for i in range(23)]  # the paper grid's 23 defenses
    styles = defense_styles(defenses)
    combos = {(s["marker"], s["dashes"]) for s in styles.values()}
    assert len(combos) == len(defenses)
    assert len({s["marker"] for s in styles.values()}) == 12
    five = defense_styles(ORDER + ["mixup", "trades"])
    gray = [
        sum(w * c for w, c in zip((0.299, 0.587, 0.114), s["color"][:3], strict=False))
        for s in five.values()
    ]
    assert all(b - a > 0.05 for a, b in zip(gray, gray[1:], strict=False))  # lightness rises
    assert len({s["marker"] for s in five.values()}) == 5
    assert len({s["dashes"] for s in five.values()}) == 5


def test_nmi_axes_start_from_the_data_and_show_chance(long, tmp_path):
    figure = metric_vs_eps(long, "nmi", SUITES, tmp_path / "nmi_vs_eps", ORDER)
    for axis in figure.axes:
        low, high = axis.get_ylim()
        # label-free worst 0.50, label-aware 0.40 .. clean 0.92, chance 0.5: not from 0
        assert 0.3 < low < 0.5 and 0.92 < high < 1.0
        for line in axis.get_lines():
            assert all(low < y < high for y in line.get_ydata())
        assert any(line.get_ydata()[0] == 0.5 for line in axis.get_lines())  # chance NMI
    figure = tradeoff(long, 8, SUITES, tmp_path / "tradeoff", ORDER)
    (axis,) = figure.axes
    low, high = axis.get_xlim()
    assert 0.75 < low < 0.82 and 0.92 < high < 0.96  # clean NMI 0.82 +- 0.028 .. 0.91 +- 0.014
    low, high = axis.get_ylim()
    assert 0.45 < low < 0.50 and 0.75 < high < 0.8  # worst 0.51 +- 0.014 .. 0.72 +- 0.028
    assert axis.get_xlabel() == "clean NMI"
    figure = nmi_by_defense(long, 8, SUITES, tmp_path / "bars", ORDER)
    low, high = figure.axes[0].get_ylim()
    assert 0.3 < low < 0.40 and 0.92 < high < 1.0


def test_tradeoff_points_are_the_means_with_std_error_bars(long, tmp_path):
    figure = tradeoff(long, 8, SUITES, tmp_path / "tradeoff", ORDER)
    (axis,) = figure.axes
    xy, xerr = [], []
    for container in axis.containers:  # one errorbar per defense
        data, _, (x_bars, _) = container.lines
        xy.append(tuple(round(value, 3) for value in data.get_xydata()[0]))
        ((left, _), (right, _)) = x_bars.get_segments()[0]
        xerr.append(round((right - left) / 2, 3))
    assert xy == [(0.91, 0.51), (0.82, 0.72), (0.85, 0.63)]  # in the run's order
    assert xerr == [0.014, 0.028, 0.0]  # std of clean NMI over seeds


def test_cost_bars_stack_every_job_kind(tmp_path):
    root = tmp_path / "benchmarks"
    paths = [
        write_benchmark(root, "train", "vanilla", 0, 7200),
        write_benchmark(root, "attack", "vanilla", 0, 3600, "label_free"),
        write_benchmark(root, "train", "eat", 0, 14400),
        write_benchmark(root, "attack", "eat", 0, 1800, "members"),
    ]
    cost = cost_frame(paths, GRID)
    figure = cost_bars(cost, tmp_path / "cost", ORDER)
    (axis,) = figure.axes
    widths = sorted(round(patch.get_width(), 2) for patch in axis.patches if patch.get_width())
    assert widths == [0.5, 1.0, 2.0, 4.0]  # hours: train 2 and 4, attack 1, members 0.5
    assert axis.get_xlim()[0] == 0 and "(h)" in axis.get_xlabel()
    assert [t.get_text() for t in axis.get_yticklabels()] == ORDER
    assert_written(tmp_path / "cost")


def test_the_figures_script_writes_every_figure_the_workflow_expects(long, tmp_path):
    names = figure_names()
    assert {"tradeoff", "cost", "nmi_vs_eps", "ari_vs_eps"} <= set(names)
    long_csv, cost_csv = tmp_path / "long.csv", tmp_path / "cost.csv"
    long.to_csv(long_csv, index=False)
    root = tmp_path / "benchmarks"
    cost = cost_frame([write_benchmark(root, "train", "eat", 0, 60)], GRID)
    cost.to_csv(cost_csv, index=False)
    out = tmp_path / "figures"
    run = subprocess.run(
        [sys.executable, str(REPO / "src/figures.py"), "--long", str(long_csv), "--cost",
         str(cost_csv), "--main-eps", "8", "--suites", json.dumps(SUITES), "--defenses",
         *ORDER, "--out-dir", str(out)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    for name in names:
        assert_written(out / name)
    assert sorted(path.stem for path in out.iterdir()) == sorted(names * 2)
    assert pd.read_csv(cost_csv)["defense"].tolist() == ORDER


def test_a_chance_level_far_below_the_data_is_written_not_drawn(long, tmp_path):
    long["nmi_chance"] = 0.05  # far below the data (0.40 .. 0.92): a line would squeeze it
    figure = metric_vs_eps(long, "nmi", SUITES, tmp_path / "nmi_vs_eps", ORDER)
    for axis in figure.axes:
        assert axis.get_ylim()[0] > 0.3
        assert [text.get_text() for text in axis.texts] == ["chance NMI 0.050 (below)"]
        assert not any(list(line.get_ydata()) == [0.05, 0.05] for line in axis.get_lines())
    figure = nmi_by_defense(long, 8, SUITES, tmp_path / "bars", ORDER)
    assert figure.axes[0].get_ylim()[0] > 0.3
    assert [text.get_text() for text in figure.axes[0].texts] == ["chance NMI 0.050 (below)"]


def test_training_curves_draw_one_line_per_defense_in_its_style(tmp_path):
    history = pd.DataFrame(
        [{"dataset": "d", "backbone": "b", "defense": defense, "seed": seed, "epoch": epoch,
          "loss": 10 - epoch + seed + i}
         for i, defense in enumerate(["eat", "vanilla"]) for seed in (0, 1)
         for epoch in (1, 2, 3)]
    )  # fmt: skip
    figure = training_curves(history, tmp_path / "curves", ORDER)
    assert_written(tmp_path / "curves")
    (axis,) = figure.axes
    lines = {tuple(line.get_color()): list(line.get_ydata()) for line in axis.get_lines()}
    styles = defense_styles(ORDER)
    assert lines[tuple(styles["vanilla"]["color"])] == [10.5, 9.5, 8.5]  # mean over seeds
    assert lines[tuple(styles["eat"]["color"])] == [9.5, 8.5, 7.5]
    assert len(lines) == 2
