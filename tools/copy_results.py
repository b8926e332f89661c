"""Copy a measured table into README.md or a docs page, stamped with where it came from: the
file the workflow or a benchmark wrote, the command that produced it, and its commit. Numbers
in the pages are never typed; tests/workflow/test_docs.py checks every block against its stamp
and asks for a note once the code that produced it has changed since that commit.

    python tools/copy_results.py docs/results.md quick-demo results/tables/main.md \\
        --command "snakemake --cores 2 --configfile config/demo.yaml"
    python tools/copy_results.py --restamp     # refresh every block's "code changed since" note

A block in a page is

    <!-- measured NAME
    source: results/tables/main.md
    command: snakemake --cores 2 --configfile config/demo.yaml
    commit: 8bef1b0
    sha256: <of the copied text>
    -->
    ...the copied text, verbatim...

    *Copied from ... by tools/copy_results.py.*
    <!-- /measured NAME -->

Its commit is the run's (`commit` of the results' provenance.json next to the source, else
`--commit`).
"""

import argparse
import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PAGES = ["README.md", *sorted(f"docs/{p.name}" for p in (REPO / "docs").glob("*.md"))]
# the code whose change can move a measured number (training, defenses, attacks, evaluation)
PRODUCING_CODE = [
    "src/robdml/training.py", "src/robdml/defenses", "src/robdml/attacks", "src/robdml/losses",
    "src/robdml/models", "src/robdml/data", "src/robdml/embedding.py", "src/robdml/evaluation.py",
    "src/robdml/metrics", "src/robdml/robustness.py", "src/robdml/fast_path.py",
]  # fmt: skip
BLOCK = re.compile(
    r"<!-- measured (?P<name>[\w.-]+)\n(?P<stamp>.*?)-->\n"
    r"(?P<body>.*?)<!-- /measured (?P=name) -->",
    re.S,
)


def sha256(text: str) -> str:
    return hashlib.sha256(text.strip().encode()).hexdigest()


def git(*args: str) -> str:
    run = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True)
    return run.stdout.strip() if run.returncode == 0 else ""


def changed_since(commit: str) -> str | None:
    """The newest commit that changed the producing code since `commit` ('' if none); None
    when `commit` is not in this clone's history (a shallow clone cannot tell)."""
    if not git("rev-parse", "--verify", "-q", f"{commit}^{{commit}}"):
        return None
    return git("log", "-1", "--format=%h", f"{commit}..HEAD", "--", *PRODUCING_CODE)


def parse_stamp(stamp: str) -> dict:
    return dict(line.split(": ", 1) for line in stamp.strip().splitlines())


def copied_text(body: str) -> str:
    """The verbatim part of a block's body (before the provenance note)."""
    return body.split("\n*Copied from ", 1)[0]


def note(stamp: dict) -> str:
    text = (
        f"*Copied from `{stamp['source']}`, written by `{stamp['command']}` at commit "
        f"{stamp['commit']}, by `tools/copy_results.py`.*"
    )
    newer = changed_since(stamp["commit"])
    if newer:
        text += (
            f"\n**Measured on commit {stamp['commit']}; the code that produces it (training, "
            f"defenses, attacks, evaluation) has changed since, last in {newer}.**"
        )
    return text


def render(name: str, stamp: dict, text: str) -> str:
    header = "".join(f"{key}: {stamp[key]}\n" for key in ("source", "command", "commit", "sha256"))
    body = f"{text.strip()}\n\n{note(stamp)}"
    return f"<!-- measured {name}\n{header}-->\n{body}\n<!-- /measured {name} -->"


def run_commit(source: Path) -> str | None:
    """The commit the run recorded (results/provenance.json beside results/tables/...)."""
    for folder in source.resolve().parents:
        provenance = folder / "provenance.json"
        if provenance.is_file():
            commit = json.loads(provenance.read_text()).get("commit", "unknown")
            return None if commit == "unknown" else commit[:7]
    return None


def copy(
    page: Path, name: str, source: Path, command: str, commit: str | None, fenced: bool = False
) -> None:
    text = source.read_text()
    if fenced:  # a benchmark's plain-text report, shown as it printed it
        text = f"```text\n{text.strip()}\n```"
    commit = commit or run_commit(source)
    if not commit:
        sys.exit(f"error: {source}: no commit in a provenance.json beside it; give --commit")
    parts = source.resolve().parts
    shown = "/".join(parts[parts.index("results") :]) if "results" in parts else str(source)
    stamp = {"source": shown, "command": command, "commit": commit, "sha256": sha256(text)}
    block = render(name, stamp, text)
    content = page.read_text()
    existing = [m for m in BLOCK.finditer(content) if m.group("name") == name]
    if existing:
        content = content.replace(existing[0].group(0), block)
    else:
        content = content.rstrip("\n") + f"\n\n{block}\n"
    page.write_text(content)


def restamp(page: Path) -> None:
    content = page.read_text()

    def renew(match: re.Match) -> str:
        stamp = parse_stamp(match.group("stamp"))
        return render(match.group("name"), stamp, copied_text(match.group("body")))

    page.write_text(BLOCK.sub(renew, content))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("page", nargs="?", type=Path, help="README.md or docs/<page>.md")
    parser.add_argument("name", nargs="?", help="the block's name (new or replaced)")
    parser.add_argument("source", nargs="?", type=Path, help="the file to copy, verbatim")
    parser.add_argument("--command", help="the command that wrote the source")
    parser.add_argument("--commit", help="the run's commit, when no provenance.json says it")
    parser.add_argument("--fenced", action="store_true", help="a plain-text report: show as is")
    parser.add_argument("--restamp", action="store_true", help="refresh every block's note")
    args = parser.parse_args()
    if args.restamp:
        for page in PAGES:
            restamp(REPO / page)
        return
    if not (args.page and args.name and args.source and args.command):
        parser.error("give PAGE NAME SOURCE --command, or --restamp")
    copy(args.page, args.name, args.source, args.command, args.commit, args.fenced)


if __name__ == "__main__":
    main()
