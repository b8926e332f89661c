"""LaTeX tables (robdml.table_format, through pandas' Styler): LaTeX's special characters
escaped everywhere, best cells bold as a command, booktabs rules, the grouped header row, a rule
between dataset/backbone blocks, the missing runs under the tabular; pdflatex compiles it."""

import math
import re
import shutil
import subprocess

import pandas as pd
import pytest

from robdml.table_format import Table


def table(groups=True) -> Table:
    index = pd.MultiIndex.from_tuples(
        [("cub_200", "resnet50", "pgd_at"), ("cub_200", "resnet50", "eat"),
         ("cars&196", "resnet50", "trades#2")],
        names=["dataset", "backbone", "defense"],
    )  # fmt: skip
    mean = pd.DataFrame(
        {"clean NMI": [0.9, 0.8, 0.7], "worst NMI": [0.5, 0.6, math.nan], "cost %": [1, 2, 3]},
        index=index,
    )
    std = pd.DataFrame({"clean NMI": [0.01] * 3, "worst NMI": [math.nan] * 3}, index=index)
    std["cost %"] = math.nan
    text = pd.DataFrame({"worst_attack": ["random_target", "oracle", "–"]}, index=index)
    return Table(
        "main_x", "NMI at 8/255 (50% of the grid) & more: ±std", mean, std, text,
        {"clean NMI": "max", "worst NMI": "max"}, ["cars&196/resnet50/trades#2 seed 1: no records"],
        decimals=2, groups=[("NMI", ["clean NMI", "worst NMI"])] if groups else [],
    )  # fmt: skip


def test_special_characters_are_escaped_in_cells_headers_caption_and_notes():
    latex = table().latex()
    for escaped in (r"cub\_200", r"pgd\_at", r"cars\&196", r"trades\#2", r"random\_target",
                    r"cost \%", r"worst\_attack", r"(50\% of the grid) \& more: $\pm$std",
                    r"cars\&196/resnet50/trades\#2 seed 1"):  # fmt: skip
        assert escaped in latex
    assert r"\label{tab:main_x}" in latex  # a label, not text: _ is allowed
    text = latex.split("\n", 1)[1].replace(r"\label{tab:main_x}", "").replace(" & ", " ")
    assert not re.search(r"(?<!\\)[_#&%]", text)  # every one left is escaped
    assert "±" not in latex and "–" not in latex


def test_best_cells_are_bold_as_a_command_within_each_block():
    latex = table().latex()
    assert r"\textbf{0.90 $\pm$ 0.01}" in latex and r"\textbf{0.60}" in latex
    assert latex.count(r"\textbf{") == 2  # cars&196 is a block of one row: no best


def test_booktabs_rules_group_header_and_a_rule_between_blocks():
    latex = table().latex()
    lines = latex.splitlines()
    assert lines[0] == r"% needs \usepackage{booktabs}"
    body = latex[latex.index(r"\begin{tabular}{lllrrrl}") : latex.index(r"\end{tabular}")]
    assert body.index(r"\toprule") < body.index(r"\midrule") < body.index(r"\bottomrule")
    header = lines[lines.index(r"\toprule") + 1 :][:3]
    assert header[0].split(" & ")[1] == r"\multicolumn{2}{c}{NMI}"
    assert header[1] == r"\cmidrule(lr){4-5}"
    assert header[2] == r"dataset & backbone & defense & clean & worst & cost \% & worst\_attack \\"
    rows = [line for line in body.splitlines() if line.endswith(r"\\")][2:]
    assert [row.startswith(r"\midrule cars\&196 & ") for row in rows] == [False, False, True]
    assert latex.index(r"\end{tabular}") < latex.index(r"\footnotesize Missing from the grid")
    assert latex.index(r"\footnotesize Missing") < latex.index(r"\end{table}")
    plain = table(groups=False).latex()
    assert "multicolumn" not in plain and "cmidrule" not in plain
    assert r"dataset & backbone & defense & clean NMI & worst NMI" in plain


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="no pdflatex")
@pytest.mark.parametrize("groups", [True, False])
def test_pdflatex_compiles_the_table(tmp_path, groups):
    (tmp_path / "table.tex").write_text(table(groups).latex())
    (tmp_path / "doc.tex").write_text(
        "\\documentclass{article}\n\\usepackage{booktabs}\n\\begin{document}\n"
        "\\input{table.tex}\n\\end{document}\n"
    )
    run = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-2000:]
