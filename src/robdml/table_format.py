"""One result table in three formats: CSV (for analysis), Markdown (for reading) and LaTeX
(booktabs, for papers), with the best mean per column and dataset/backbone block in bold and
the runs missing from the grid listed under it."""

from dataclasses import dataclass, field
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
        """booktabs table: `\\toprule/\\midrule/\\bottomrule`, a `\\midrule` between
        dataset/backbone blocks, bold best cells, missing runs as a note under the tabular."""
        frame = self.frame(bold=r"\textbf{%s}")
        ids = list(self.mean.index.names)
        align = "l" * len(ids) + "r" * len(self.mean.columns) + "l" * len(self.text.columns)
        lines = [
            r"% needs \usepackage{booktabs}",
            r"\begin{table}[htbp]",
            r"\centering",
            rf"\caption{{{latex_escape(self.caption)}}}",
            rf"\label{{tab:{self.name}}}",
            rf"\begin{{tabular}}{{{align}}}",
            r"\toprule",
        ]
        columns = list(frame.columns)
        headers = [latex_escape(column) for column in columns]
        if self.groups:
            top, rules, position = [], [], 0
            grouped = {column: label for label, members in self.groups for column in members}
            while position < len(columns):
                label = grouped.get(columns[position])
                if label is None:
                    top.append("")
                    position += 1
                    continue
                span = 1
                following = columns[position + 1 :]
                while span <= len(following) and grouped.get(following[span - 1]) == label:
                    span += 1
                top.append(rf"\multicolumn{{{span}}}{{c}}{{{latex_escape(label)}}}")
                rules.append(rf"\cmidrule(lr){{{position + 1}-{position + span}}}")
                for offset in range(span):
                    column = columns[position + offset]
                    headers[position + offset] = latex_escape(column.replace(label, "").strip())
                position += span
            lines += [" & ".join(top) + r" \\", " ".join(rules)]
        lines += [" & ".join(headers) + r" \\", r"\midrule"]
        previous = None
        for _, row in frame.iterrows():
            block = tuple(row[name] for name in BLOCK if name in ids)
            if previous is not None and block != previous:
                lines.append(r"\midrule")
            previous = block
            cells = [latex_escape(str(value), keep_commands=True) for value in row]
            lines.append(" & ".join(cells) + r" \\")
        lines += [r"\bottomrule", r"\end{tabular}"]
        if self.notes:
            notes = "; ".join(self.notes)
            lines.append(
                r"\par\smallskip{\footnotesize Missing from the grid (not in the values above): "
                f"{latex_escape(notes)}.}}"
            )
        lines.append(r"\end{table}")
        return "\n".join(lines) + "\n"

    def write(self, out_dir: Path, csv: bool = True) -> None:
        """{name}.csv (unless the caller writes its own), .md and .tex in `out_dir`."""
        if csv:
            frame = self.frame()
            atomic_write(out_dir / f"{self.name}.csv", lambda tmp: frame.to_csv(tmp, index=False))
        atomic_write(out_dir / f"{self.name}.md", lambda tmp: tmp.write_text(self.markdown()))
        atomic_write(out_dir / f"{self.name}.tex", lambda tmp: tmp.write_text(self.latex()))


LATEX = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    "±": r"$\pm$", "Δ": r"$\Delta$", "–": "--", "→": r"$\to$", "≥": r"$\geq$",
}  # fmt: skip


def latex_escape(text: str, keep_commands: bool = False) -> str:
    """`text` with LaTeX's special characters escaped; `keep_commands`: a cell wrapped in
    \\textbf{...} keeps the command."""
    if keep_commands and text.startswith(r"\textbf{") and text.endswith("}"):
        return r"\textbf{" + latex_escape(text[len(r"\textbf{") : -1]) + "}"
    return "".join(LATEX.get(char, char) for char in text)
