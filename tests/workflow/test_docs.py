"""README.md and docs/*.md: every relative link points to a file that exists, every `#anchor`
to a heading of its target (MkDocs' slugs), and README.md stays short. Offline, no MkDocs."""

import json
import re
import sys
import unicodedata

import pytest
import yaml

from conftest import REPO

sys.path.insert(0, str(REPO / "tools"))
import copy_results  # noqa: E402

PAGES = [
    "README.md",
    "CHANGELOG.md",
    *sorted(f"docs/{p.name}" for p in (REPO / "docs").glob("*.md")),
]
LINK = re.compile(r"(?<!!)\[(?:[^\]\[]|\[[^\]]*\])*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)


def slug(heading: str) -> str:
    """Python-Markdown's toc slug (MkDocs' default): markup dropped, ASCII, punctuation
    dropped, lower-case, runs of spaces and hyphens to one hyphen."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def prose(path) -> str:
    return FENCE.sub("", path.read_text())


def anchors(path) -> set[str]:
    return {slug(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.+?)\s*#*\s*$", prose(path), re.M)}


def broken_links(page: str) -> list[str]:
    path = REPO / page
    found = []
    for target in LINK.findall(prose(path)):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        file, _, anchor = target.partition("#")
        dest = (path.parent / file).resolve() if file else path
        if not dest.exists():
            found.append(f"{target}: no such file")
        elif anchor and (dest.suffix != ".md" or anchor not in anchors(dest)):
            found.append(f"{target}: no heading #{anchor} in {dest.relative_to(REPO)}")
    return found


def test_slugs_follow_mkdocs():
    assert slug("Jobs and start-up: `benchmarks/dag.py`") == "jobs-and-start-up-benchmarksdagpy"
    assert (
        slug("Baselines as their authors' code runs them")
        == "baselines-as-their-authors-code-runs-them"
    )
    assert (
        slug("Evaluate your model (library and command)")
        == "evaluate-your-model-library-and-command"
    )


def test_the_check_finds_broken_links(tmp_path, monkeypatch):
    page = tmp_path / "page.md"
    page.write_text(
        "# Title\n\n[a](page.md#title) [b](missing.md) [c](#nothing) [d](https://x.org)\n"
    )
    monkeypatch.setattr(__import__(__name__), "REPO", tmp_path)
    assert broken_links("page.md") == [
        "missing.md: no such file",
        "#nothing: no heading #nothing in page.md",
    ]


@pytest.mark.parametrize("page", PAGES)
def test_relative_links_resolve(page):
    assert broken_links(page) == [], page


def test_readme_is_short():
    assert len((REPO / "README.md").read_text().splitlines()) <= 150


CITING = ["src", "workflow", "config", "benchmarks", "tools", "examples", "profiles"]
CITATION = re.compile(r'\b(README\.md|docs/[a-z_]+\.md|README) "([^"\n]+)"')


def citations() -> list[tuple[str, str, str]]:
    """(file, page, heading) of every `docs/page.md "Heading"` the code and configs cite."""
    found = []
    for folder in CITING:
        for path in sorted((REPO / folder).rglob("*")):
            if path.suffix in {".py", ".smk", ".yaml", ".md", ".sh", ".json"}:
                for page, heading in CITATION.findall(path.read_text()):
                    found.append((str(path.relative_to(REPO)), page, heading))
    return found


def test_every_section_the_code_cites_exists():
    """Comments and messages cite a page and a heading's exact text; a moved or renamed
    section fails here (a bare `README "..."` names no page and fails too)."""
    assert citations(), "the citation pattern finds nothing: it is broken"
    missing = []
    for where, page, heading in citations():
        headings = set()
        if (REPO / page).is_file():
            text = prose(REPO / page)
            headings = {m.group(1) for m in re.finditer(r"^#{1,6}\s+(.+?)\s*$", text, re.M)}
        if heading not in headings:
            missing.append(f'{where}: {page} "{heading}"')
    assert not missing, missing


def test_numbers_the_prose_states_are_the_configs_and_the_recorded_dags():
    """Counts a reader sees in README and docs, checked against where they come from: the job
    counts of the copied cost table against the recorded DAGs
    (tests/fixtures/dag_fingerprints.json, which the workflow test keeps true), the glyph
    split's class counts against the config."""
    fingerprints = json.loads((REPO / "tests/fixtures/dag_fingerprints.json").read_text())
    readme = (REPO / "README.md").read_text()
    jobs = {name: f"{entry['jobs']:,}" for name, entry in fingerprints.items()}
    assert f"| config.yaml (the paper) | {jobs['config']} |" in readme
    assert f"| demo.yaml | {jobs['demo']} |" in readme
    assert f"| demo_full.yaml | {jobs['demo_full']} |" in readme
    glyphs = yaml.safe_load((REPO / "config/config.yaml").read_text())["datasets"]["glyphs"]
    counts, per_class = glyphs["counts"], 16
    train_classes = counts["train_images"] // per_class
    data = " ".join((REPO / "docs/data.md").read_text().split())
    assert f"merged into {train_classes + counts['test_classes']} classes of {per_class}" in data
    assert f"gives {train_classes} training and {counts['test_classes']} test classes" in data


def measured_blocks() -> list[tuple[str, re.Match]]:
    return [(page, m) for page in PAGES for m in copy_results.BLOCK.finditer(prose_of(page))]


def prose_of(page: str) -> str:
    return (REPO / page).read_text()


def test_every_measured_block_is_the_copy_its_stamp_names():
    """A table edited by hand no longer hashes to its stamp; the visible note names where it
    came from and, once the code that produced it changed, that it did (and in which commit)."""
    assert measured_blocks(), "no measured blocks found: the pattern is broken"
    for page, block in measured_blocks():
        stamp = copy_results.parse_stamp(block.group("stamp"))
        where = f"{page}: {block.group('name')}"
        copied = copy_results.copied_text(block.group("body"))
        assert copy_results.sha256(copied) == stamp["sha256"], f"{where}: edited by hand"
        newer = copy_results.changed_since(stamp["commit"])
        if newer is None:
            pytest.skip(f"commit {stamp['commit']} is not in this clone's history")
        stale = f"has changed since, last in {newer}." in block.group("body")
        assert stale == bool(newer), f"{where}: run `python tools/copy_results.py --restamp`"


METRIC_ROW = re.compile(r"^\|.*\b\d\.\d{3}\b.*\|.*\b\d\.\d{3}\b.*\|\s*$", re.M)


def test_no_results_table_is_typed_outside_a_measured_block():
    """Rows of measured metrics (two or more values with three decimals) appear only inside a
    block tools/copy_results.py wrote."""
    typed = []
    for page in PAGES:
        text = copy_results.BLOCK.sub("", FENCE.sub("", prose_of(page)))
        typed += [f"{page}: {row[:80]}" for row in METRIC_ROW.findall(text)]
    assert not typed, typed
