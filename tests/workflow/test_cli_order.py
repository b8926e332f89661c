"""Every `snakemake` command the project suggests (README, config comments, the code's messages)
is safe to copy: `--configfile` takes any number of values, so a target written after its
files is read as one more config file (`FileNotFoundError: 'fetch_weights'`). Targets go
before it, or it is written `--configfile=file`."""

import re
import shlex

import pytest

from conftest import REPO

SUGGESTING = [
    "README.md",
    "CHANGELOG.md",
    *sorted(str(p.relative_to(REPO)) for p in (REPO / "docs").glob("*.md")),
    "config/README.md",
    *sorted(str(p.relative_to(REPO)) for p in (REPO / "config").rglob("*.yaml")),
    *sorted(str(p.relative_to(REPO)) for p in (REPO / "examples").rglob("*.*")),
    *sorted(str(p.relative_to(REPO)) for p in (REPO / "profiles").rglob("*.yaml")),
    *sorted(str(p.relative_to(REPO)) for p in (REPO / "src").rglob("*.py")),
    *sorted(str(p.relative_to(REPO)) for p in (REPO / "workflow").rglob("*.smk")),
    *sorted(str(p.relative_to(REPO)) for p in (REPO / "benchmarks").glob("*.*")),
    *sorted(str(p.relative_to(REPO)) for p in (REPO / "tools").glob("*.py")),
]
CONFIG_FILE = re.compile(r".*\.ya?ml$|.*[{<…].*")  # a YAML file, or a placeholder for one


def unsafe_commands(text: str) -> list[str]:
    """The snakemake commands in `text` where something that is no config file follows the
    values of a space-separated `--configfile`."""
    found = []
    for match in re.finditer(r"snakemake (?:[^`\n#\"')]|\\\n)*", text):
        command = match.group(0)
        try:
            tokens = shlex.split(command.replace("\\\n", " "))
        except ValueError:
            tokens = command.split()
        if "--configfile" not in tokens:
            continue
        values = tokens[tokens.index("--configfile") + 1 :]
        for token in values:
            if token.startswith("-"):
                break
            if not CONFIG_FILE.fullmatch(token):
                found.append(command.strip())
                break
    return found


def test_the_check_finds_the_unsafe_order():
    assert unsafe_commands("snakemake -n --cores 1 --configfile config/cub_quick.yaml fetch")
    assert unsafe_commands("`snakemake --configfile a.yaml b.yaml all --cores 2`")
    assert not unsafe_commands("snakemake fetch --cores 1 --configfile config/cub_quick.yaml")
    assert not unsafe_commands("snakemake --configfile=config/demo.yaml fetch --cores 1")
    assert not unsafe_commands("snakemake --configfile a.yaml b.yaml --cores 2  # all")


@pytest.mark.parametrize("path", SUGGESTING)
def test_suggested_commands_put_targets_before_configfile(path):
    text = (REPO / path).read_text(errors="replace")
    assert unsafe_commands(text) == [], path
