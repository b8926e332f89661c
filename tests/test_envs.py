"""The conda env files (for `--sdm conda`, not exercised here) parse and pin the same versions
as envs/requirements.txt, which CI installs."""

import re

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


def test_every_rule_names_an_existing_conda_env():
    for rules in (REPO / "workflow/rules").glob("*.smk"):
        for env in re.findall(r'conda:\s*\n\s*"([^"]+)"', rules.read_text()):
            assert (rules.parent / env).resolve().exists(), f"{rules.name}: {env}"
