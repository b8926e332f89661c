"""The conda env files (for `--sdm conda`, not exercised here) parse and pin the same versions
as envs/requirements.txt, which CI installs."""

import ast
import json
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
import yaml

from conftest import REPO


def pins(lines) -> dict[str, str]:
    found = {}
    for line in lines:
        match = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)==([^\s#]+)\s*(#.*)?", line)
        if match:
            found[match[1].lower()] = match[2]
    return found


REQUIREMENTS = pins((REPO / "envs/requirements.txt").read_text().splitlines())


def test_requirements_pin_the_torch_build_on_this_disk():
    assert REQUIREMENTS["torch"] == "2.14.1"
    assert REQUIREMENTS["torchvision"] == "0.29.1"
    assert REQUIREMENTS["snakemake"].startswith("9.")


@pytest.mark.parametrize("env", sorted(p.name for p in (REPO / "envs").glob("*.yaml")))
def test_conda_env_pins_match_requirements(env):
    spec = yaml.safe_load((REPO / "envs" / env).read_text())
    assert spec["name"] and "conda-forge" in spec["channels"]
    assert "python=3.11" in spec["dependencies"]
    pip_section = next(d["pip"] for d in spec["dependencies"] if isinstance(d, dict))
    env_pins = pins(pip_section)
    assert env_pins, "no pinned pip dependencies"
    for name, version in env_pins.items():
        assert REQUIREMENTS.get(name) == version, f"{env}: {name}=={version}"


def test_the_library_declares_ranges_and_leaves_exact_pins_to_envs():
    """`pip install -e .` on a cluster must keep the site's CUDA build of torch."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == ">=3.11"
    for requirement in project["dependencies"]:
        assert "==" not in requirement, requirement
        name = re.match(r"[A-Za-z0-9_.\-]+", requirement)[0].lower()
        assert name in REQUIREMENTS, f"{name} is not pinned in envs/requirements.txt"


def test_the_workflow_extra_adds_snakemake_next_to_the_installed_torch():
    """README's cluster route: in an environment that already has torch (here the pinned one,
    standing in for a site's build), `pip install -e ".[workflow]"` resolves without touching
    torch or torchvision, and the extra's ranges admit the pins CI installs."""
    extra = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    workflow = extra["optional-dependencies"]["workflow"]
    assert {re.split(r"[<>=]", spec)[0] for spec in workflow} == {
        "snakemake", "snakemake-executor-plugin-slurm"
    }  # fmt: skip
    run = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--no-index", "--no-build-isolation",
         "--quiet", "--report", "-", "-e", f"{REPO}[workflow]"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    would_install = {item["metadata"]["name"].lower() for item in json.loads(run.stdout)["install"]}
    assert would_install == {"robdml"}, would_install


def test_every_rule_names_an_existing_conda_env():
    for rules in (REPO / "workflow/rules").glob("*.smk"):
        for env in re.findall(r'conda:\s*\n\s*"([^"]+)"', rules.read_text()):
            assert (rules.parent / env).resolve().exists(), f"{rules.name}: {env}"


def import_time_nodes(tree: ast.AST):
    """The statements that run when a module is imported: not the bodies of functions (a lazy
    import there is checked where the function's caller runs)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            continue
        yield node
        yield from import_time_nodes(node)


def imported_modules(path: Path, seen: set[Path]) -> set[str]:
    """Top-level names of every third-party module importing `path` imports, following
    robdml's own modules."""
    seen.add(path)
    names = set()
    for node in import_time_nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            modules = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for module in modules:
            if not module.startswith("robdml"):
                names.add(module.split(".")[0])
                continue
            folder = REPO / "src" / Path(*module.split("."))
            for candidate in (folder.with_suffix(".py"), folder / "__init__.py"):
                if candidate.exists() and candidate not in seen:
                    names |= imported_modules(candidate, seen)
    return names


def provided_distributions(names: list[str]) -> set[str]:
    """These distributions and everything they require, as installed here."""
    provided, todo = set(), [normalise(name) for name in names]
    while todo:
        name = todo.pop()
        if name in provided:
            continue
        provided.add(name)
        try:
            requirements = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for requirement in requirements:
            if "extra ==" not in requirement:
                todo.append(normalise(re.match(r"[A-Za-z0-9_.\-]+", requirement)[0]))
    return provided


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


RULES = [
    (match[1], f"{match[2] or match[3]}.py", match[4])
    for rules in sorted((REPO / "workflow/rules").glob("*.smk"))
    for match in re.finditer(
        r"^\s*rule (\w+):(?:(?!^\s*(?:use )?rule ).)*?"
        r"script=(?:f\"\{SRC\}/(\w+)\.py\"|step_script\(\"(\w+)\"\))"
        r"(?:(?!^\s*(?:use )?rule ).)*?conda:\s*\n\s*\"\.\./\.\./envs/(\w+\.yaml)\"",
        rules.read_text(),
        flags=re.S | re.M,
    )
]


def test_every_rule_with_a_script_and_an_env_is_found():
    assert {rule for rule, _, _ in RULES} >= {
        "train",
        "import_external",
        "attack",
        "attack_members",
        "transfer",
        "tsne",
        "tables",
    }


@pytest.mark.parametrize(("rule", "script", "env"), RULES, ids=[rule for rule, _, _ in RULES])
def test_each_rule_env_provides_what_its_script_imports(rule, script, env):
    """`--sdm conda` runs a rule in its env only: every third-party module its script (and
    the robdml modules it reaches) can import must come from that env's packages."""
    spec = yaml.safe_load((REPO / "envs" / env).read_text())
    pip_section = next(d["pip"] for d in spec["dependencies"] if isinstance(d, dict))
    provided = provided_distributions(list(pins(pip_section)))
    by_module = metadata.packages_distributions()
    missing = set()
    for module in imported_modules(REPO / "src" / script, set()) - set(sys.stdlib_module_names):
        distributions = {normalise(d) for d in by_module.get(module, [module])}
        if not distributions & provided:
            missing.add(f"{module} ({', '.join(sorted(distributions))})")
    assert not missing, f"{rule} ({script}) in envs/{env} lacks {sorted(missing)}"
