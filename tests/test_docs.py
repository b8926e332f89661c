"""README.md and docs/*.md: every relative link points to a file that exists, every `#anchor`
to a heading of its target (MkDocs' slugs), and README.md stays short. Offline, no MkDocs."""

import re
import unicodedata

import pytest

from conftest import REPO

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


def test_docs_commands_put_targets_before_configfile():
    """tests/test_cli_order.py's check, over the documentation pages too."""
    from test_cli_order import unsafe_commands

    for page in PAGES:
        assert unsafe_commands((REPO / page).read_text()) == [], page
