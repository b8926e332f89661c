"""One result table in three formats: CSV (for analysis), Markdown (for reading) and LaTeX
(booktabs, for papers), with the best mean per column and dataset/backbone block in bold and
the runs missing from the grid listed under it."""

from dataclasses import dataclass, field
from itertools import groupby
from pathlib import Path

import pandas as pd

from robdml.io import atomic_write

BLOCK = ["dataset", "backbone"]  # the best value is bolded within each block
MISSING = "–"  # a cell without a value


@dataclass
class Table:
    """Numeric columns (`mean`, `std`: same index and columns; NaN std: the mean alone, NaN
    mean: no value) then text columns, over an index of identifiers. `best`: numeric column ->
    "max" or "min", the mean shown in bold within each dataset/backbone block (others: never
    bold). `groups`: LaTeX header groups (label, columns). `notes`: printed under the table."""

    name: str
    caption: str
    mean: pd.DataFrame
    std: pd.DataFrame
    text: pd.DataFrame
    best: dict[str, str]
    notes: list[str]
    decimals: int = 3
    groups: list[tuple[str, list[str]]] = field(default_factory=list)

    def cell(self, column: str, row) -> str:
        mean, std = self.mean.at[row, column], self.std.at[row, column]
        if pd.isna(mean):
            return MISSING
        if pd.isna(std):
            return f"{mean:.{self.decimals}f}"
        return f"{mean:.{self.decimals}f} ± {std:.{self.decimals}f}"

    def bold(self) -> pd.DataFrame:
        """True where a cell holds its column's best mean (as printed) within its block;
        a block whose values are all equal (or one) has no best."""
        marks = pd.DataFrame(False, index=self.mean.index, columns=self.mean.columns)
        names = list(self.mean.index.names)
        blocks = [name for name in BLOCK if name in names]
        groups = (
            self.mean.groupby(level=blocks, sort=False)
            if blocks
            else [(None, self.mean)]  # one block
        )
        for _, block in groups:
            for column, direction in self.best.items():
                values = block[column].round(self.decimals).dropna()
                if values.nunique() < 2:  # one value, or all equal: no best
                    continue
                target = values.max() if direction == "max" else values.min()
                marks.loc[values.index[values == target], column] = True
        return marks

    def frame(self, bold: str | None = None) -> pd.DataFrame:
        """The printed table: identifiers, cells, text columns; best cells as `bold` % cell."""
        marks = self.bold()
        cells = {}
        for column in self.mean.columns:
            cells[column] = [
                (bold % text if bold and marks.at[row, column] else text)
                for row in self.mean.index
                for text in [self.cell(column, row)]
            ]
        frame = pd.DataFrame(cells, index=self.mean.index)
        frame = pd.concat([frame, self.text.reindex(self.mean.index).fillna(MISSING)], axis=1)
        return frame.reset_index()

    def notes_text(self) -> str:
        if not self.notes:
            return ""
        return "Missing from the grid (not in the values above):\n\n" + "".join(
            f"- {note}\n" for note in self.notes
        )

    def markdown(self) -> str:
        table = self.frame(bold="**%s**").to_markdown(index=False, disable_numparse=True)
        notes = self.notes_text()
        return f"{self.caption}\n\n{table}\n" + (f"\n{notes}" if notes else "")

    def latex(self) -> str:
        """booktabs table from pandas' Styler (escaped cells, bold best cells, the groups as
        a `\\multicolumn` header row). Added here, as Styler has no way to: a `\\midrule`
        between dataset/backbone blocks (its `clines` are `\\cline`s), `\\cmidrule`s under
        the groups, the missing runs as a note under the tabular, an escaped caption (Styler
        prints it as given)."""
        frame = self.frame().astype(str)
        ids = list(self.mean.index.names)
        align = "l" * len(ids) + "r" * len(self.mean.columns) + "l" * len(self.text.columns)
        bold = self.bold().reset_index(drop=True)
        styles = bold.map(lambda best: "textbf: --rwrap;" if best else "")
        styles = styles.reindex(columns=frame.columns, fill_value="")
        keys = frame[[name for name in BLOCK if name in ids]]
        opens = keys.ne(keys.shift()).any(axis=1) & (frame.index > 0)
        styles.loc[opens, frame.columns[0]] = "midrule: --nowrap;"  # `\midrule d & …`: a rule
        if self.groups:
            grouped = {column: label for label, members in self.groups for column in members}
            frame.columns = styles.columns = pd.MultiIndex.from_tuples(
                (grouped[column], column.replace(grouped[column], "").strip())
                if column in grouped
                else ("", column)
                for column in frame.columns
            )
        styler = (
            frame.style.hide(axis="index")
            .format(escape="latex", formatter=latex_symbols)
            .format_index(escape="latex", formatter=latex_symbols, axis="columns")
            .apply(lambda _: styles, axis=None)
        )
        lines = styler.to_latex(
            column_format=align, position="htbp", position_float="centering", hrules=True,
            label=f"tab:{self.name}", caption=latex_escape(self.caption), multicol_align="c",
            environment="table",
        ).splitlines()  # fmt: skip
        if self.groups:
            rules, position = [], 1
            for label, members in groupby(frame.columns.get_level_values(0)):
                span = len(list(members))
                if label:
                    rules.append(rf"\cmidrule(lr){{{position}-{position + span - 1}}}")
                position += span
            lines.insert(lines.index(r"\toprule") + 2, " ".join(rules))
        if self.notes:
            lines.insert(
                lines.index(r"\end{table}"),
                r"\par\smallskip{\footnotesize Missing from the grid (not in the values above): "
                f"{latex_escape('; '.join(self.notes))}.}}",
            )
        return "\n".join([r"% needs \usepackage{booktabs}", *lines]) + "\n"

    def write(self, out_dir: Path, csv: bool = True) -> None:
        """{name}.csv (unless the caller writes its own), .md and .tex in `out_dir`."""
        if csv:
            frame = self.frame()
            atomic_write(out_dir / f"{self.name}.csv", lambda tmp: frame.to_csv(tmp, index=False))
        atomic_write(out_dir / f"{self.name}.md", lambda tmp: tmp.write_text(self.markdown()))
        atomic_write(out_dir / f"{self.name}.tex", lambda tmp: tmp.write_text(self.latex()))


SYMBOLS = {"±": r"$\pm$", "Δ": r"$\Delta$", "–": "--", "→": r"$\to$", "≥": r"$\geq$"}
LATEX = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", **SYMBOLS,
}  # fmt: skip


def latex_symbols(text: str) -> str:
    """`text` with the Unicode symbols of the tables as LaTeX (Styler's escaping leaves them,
    and pdflatex lacks some)."""
    return "".join(SYMBOLS.get(char, char) for char in text)


def latex_escape(text: str) -> str:
    """`text` with LaTeX's special characters and the symbols escaped (caption and notes:
    Styler escapes only the cells and headers)."""
    return "".join(LATEX.get(char, char) for char in text)
