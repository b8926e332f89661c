"""Loading and validating the workflow config, and the narrow per-step specs built from it.

The default config (config/config.yaml) holds every definition (datasets, backbones, recipes,
defense and attack methods and their named variants) and the paper's selection (`run`,
`attack_suites`, `evaluation.eps_255`); overlays (`--configfile`) merge over it, as Snakemake
merges them, and usually only change the selection. Validation is two-stage: the whole config
against workflow/schemas/config.schema.yaml, then every named defense/attack, merged over its
method's defaults, against that method's definition. The resolved config keeps only what `run`
selects (and of each dataset's raw files, those its `source` reads), so the rules iterate over
`datasets`, `backbones`, `defenses`, `attacks` and `raw_files` as they are.
Any problem stops with one line naming the key, e.g.
`config/demo.yaml: datasets.glyphs: unknown key 'imagesize' (allowed: channels, image_size, ...)`.
"""

import copy
from pathlib import Path

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

from robdml.data.raw_files import RAW_FILES, allowed_raw_files
from robdml.factory import factory_file
from robdml.threat_model import reads_true_labels

REPO = Path(__file__).resolve().parents[2]
SCHEMA_PATH = REPO / "workflow" / "schemas" / "config.schema.yaml"
DEFAULT_CONFIG = REPO / "config" / "config.yaml"


class ConfigError(ValueError):
    """A config problem, with a one-line message that names the offending key."""


def load_schema(path: str | Path = SCHEMA_PATH) -> dict:
    """The config schema, completed from its `$defs`: each `defense_<method>` and
    `attack_<method>` definition is a method (so a new method is its definition, and the
    method lists are never kept by hand), and every defense method also takes the keys of
    `$defs/shared_defense_params`, declared there once. A dataset entry's raw files are those
    its source's module reads (robdml.data.raw_files), with their alternatives'."""
    schema = yaml.load(Path(path).read_text(), Loader=FAST_SAFE_LOADER)
    definitions = schema["$defs"]
    shared = definitions["shared_defense_params"]["properties"]
    for section, prefix in (("defense_methods", "defense_"), ("attack_methods", "attack_")):
        schema["properties"][section]["properties"] = {
            name.removeprefix(prefix): {"$ref": f"#/$defs/{name}"}
            for name in definitions
            if name.startswith(prefix)
        }
    for method in schema["properties"]["defense_methods"]["properties"].values():
        definition = definitions[method["$ref"].removeprefix("#/$defs/")]
        definition["properties"] = {**shared, **definition["properties"]}
    definitions["dataset"]["allOf"] += [
        {
            "if": {"properties": {"source": {"const": source}}},
            "then": {
                "properties": {
                    "raw_files": {
                        "required": list(files),
                        "propertyNames": {"enum": allowed_raw_files(source)},
                    }
                }
            },
        }
        for source, files in RAW_FILES.items()
    ]
    return schema


def validate_config(config: dict, schema: dict, source: str = "config") -> dict:
    """Check `config`; return it with every defense and attack resolved (`method` + all params)."""
    check(config, schema, schema, source, "")
    resolved = copy.deepcopy(config)
    for section, methods in (("defenses", "defense_methods"), ("attacks", "attack_methods")):
        method_schemas = schema["properties"][methods]["properties"]
        for name, entry in config[section].items():
            where = f"{section}.{name}"
            method = entry["method"]
            if method not in method_schemas:
                raise ConfigError(
                    f"{source}: {where}.method: unknown method {method!r} "
                    f"(known: {', '.join(sorted(method_schemas))})"
                )
            if method not in config[methods]:
                raise ConfigError(
                    f"{source}: {where}.method: {method!r} has no defaults in `{methods}`"
                )
            merged = deep_merge(config[methods][method], entry)
            check(merged, method_schemas[method], schema, source, where)
            resolved[section][name] = merged
    for dataset, recipe in config["recipes"].items():
        if dataset not in config["datasets"]:
            raise ConfigError(f"{source}: recipes.{dataset}: no such dataset in `datasets`")
        merged = deep_merge(config["training"], recipe)
        check(merged, schema["$defs"]["training"], schema, source, f"recipes.{dataset}")
        resolved["recipes"][dataset] = merged
    check_references(config, source)
    check_normalisation(config, source)
    select(resolved, source)
    check_external_models(resolved, config["defenses"], source)
    keep_source_raw_files(resolved)
    check_suites(resolved, source)
    check_class_pairs(resolved, source)
    stronger = resolved["sanity"]["stronger"]  # null: that variant is off (overlays merge)
    resolved["sanity"]["stronger"] = {kind: n for kind, n in stronger.items() if n is not None}
    resolved["attacks"] |= stronger_variants(resolved)
    main_eps = config["report"]["main_eps_255"]
    if main_eps not in config["evaluation"]["eps_255"]:
        raise ConfigError(f"{source}: report.main_eps_255: {main_eps} is not in evaluation.eps_255")
    probes = config["sanity"]["breaking_attacks"]
    unknown = set(probes) - set(resolved["attack_suites"]["label_free"])
    if unknown and config["sanity"]["breaking_eps_255"] is not None:
        raise ConfigError(
            f"{source}: sanity.breaking_attacks: {', '.join(sorted(unknown))} not in"
            " attack_suites.label_free (both threat models' check (a) reads them)"
        )
    resources = config["resources"]
    if resources["time_limit_min"] <= resources["startup_min"]:
        raise ConfigError(
            f"{source}: resources.time_limit_min: {resources['time_limit_min']} leaves no time"
            f" after resources.startup_min ({resources['startup_min']})"
        )
    return resolved


def check_references(config: dict, source: str) -> None:
    """Names used in `transfer`, `sanity` and `report.tsne` must be configured entries."""
    references = [
        ("attack_suites.label_free", config["attack_suites"]["label_free"], "attacks"),
        ("attack_suites.label_aware", config["attack_suites"]["label_aware"], "attacks"),
        ("transfer.attacks", config["transfer"]["attacks"], "attacks"),
        ("ensemble_members.attacks", config["ensemble_members"]["attacks"], "attacks"),
        ("transfer.source_defenses", config["transfer"]["source_defenses"], "defenses"),
        ("report.tsne.defenses", config["report"]["tsne"]["defenses"], "defenses"),
        ("report.paired_baselines", config["report"]["paired_baselines"], "defenses"),
        ("report.tsne.attack", [config["report"]["tsne"]["attack"]], "attacks"),
    ]
    for where, names, section in references:
        for name in names:
            if name not in config[section]:
                raise ConfigError(f"{source}: {where}: {name!r} is not in `{section}`")


def check_normalisation(config: dict, source: str) -> None:
    """A dataset's `mean` and `std` give one value per channel."""
    for name, dataset in config["datasets"].items():
        for key in ("mean", "std"):
            if len(dataset[key]) != dataset["channels"]:
                raise ConfigError(
                    f"{source}: datasets.{name}.{key}: {len(dataset[key])} values for "
                    f"{dataset['channels']} channels"
                )


def select(config: dict, source: str) -> None:
    """Keep, in place, what `run` selects: its datasets, backbones and defenses (in its order)
    and the attacks something reports; report lists keep the selected defenses only."""
    run = config["run"]
    for section, noun in (
        ("datasets", "dataset"),
        ("backbones", "backbone"),
        ("defenses", "defense"),
    ):
        for name in run[section]:
            if name not in config[section]:
                raise ConfigError(
                    f"{source}: run.{section}: no such {noun} {name!r} "
                    f"(known: {', '.join(config[section])})"
                )
        config[section] = {name: config[section][name] for name in run[section]}
    used = set(suite_attacks(config) + config["transfer"]["attacks"])
    used |= set(config["ensemble_members"]["attacks"]) | {config["report"]["tsne"]["attack"]}
    config["attacks"] = {name: entry for name, entry in config["attacks"].items() if name in used}
    report = config["report"]
    for lists, key in ((report["tsne"], "defenses"), (report, "paired_baselines"),
                       (config["transfer"], "source_defenses")):  # fmt: skip
        lists[key] = [name for name in lists[key] if name in config["defenses"]]


def check_external_models(config: dict, defenses: dict, source: str) -> None:
    """Each external model (robdml.models.external) joins a selected dataset and backbone,
    takes that dataset's test images as they are prepared and has a name no defense has."""
    for name, entry in config["external_models"].items():
        where = f"{source}: external_models.{name}"
        if name in defenses:
            raise ConfigError(f"{where}: the name is a defense's; external models need their own")
        for key, section in (("dataset", "datasets"), ("backbone", "backbones")):
            if entry[key] not in config[section]:
                raise ConfigError(
                    f"{where}.{key}: {entry[key]!r} is not selected in run.{section} "
                    f"(selected: {', '.join(config[section])})"
                )
        dataset = config["datasets"][entry["dataset"]]
        for key in ("mean", "std"):
            if len(entry[key]) != dataset["channels"]:
                raise ConfigError(
                    f"{where}.{key}: {len(entry[key])} values for the {dataset['channels']} "
                    f"channels of {entry['dataset']}'s images"
                )
        if entry["image_size"] != dataset["image_size"]:
            raise ConfigError(
                f"{where}.image_size: {entry['image_size']}, but {entry['dataset']}'s test "
                f"images are {dataset['image_size']} px (attacks work on the prepared images)"
            )


def check_external_files(config: dict, source: str) -> None:
    """The factory and weights files of every external model exist (checked when the
    workflow plans, so a wrong path is one line instead of a missing-input error)."""
    for name, entry in config["external_models"].items():
        files = {"factory": factory_file(entry), "weights": entry.get("weights")}
        for key, path in files.items():
            if path is not None and not Path(path).is_file():
                raise ConfigError(f"{source}: external_models.{name}.{key}: no file {path}")


def keep_source_raw_files(config: dict) -> None:
    """A dataset entry may list the raw files of several sources of its data (CARS196: the
    official files and Kaggle's mirror); keep, in place, those its `source` reads."""
    for dataset in config["datasets"].values():
        if "raw_files" in dataset:
            own = RAW_FILES[dataset["source"]]
            dataset["raw_files"] = {k: v for k, v in dataset["raw_files"].items() if k in own}


def check_suites(config: dict, source: str) -> None:
    """A label-free suite must not contain an attack that reads the true test labels; the
    attacks crafted on a member or on another model are suite attacks, so that they count in
    the worst case of the threat models they belong to (robdml.worst_case); the attacker's
    k-means seed is not one the evaluation scores with (it would know the scorer's clusters)."""
    for name in config["attack_suites"]["label_free"]:
        if reads_true_labels(config["attacks"][name]):
            raise ConfigError(
                f"{source}: attack_suites.label_free: {name!r} reads the true test labels "
                "(label-aware); move it to attack_suites.label_aware"
            )
    for where in ("transfer", "ensemble_members"):
        for name in config[where]["attacks"]:
            if name not in suite_attacks(config):
                raise ConfigError(
                    f"{source}: {where}.attacks: {name!r} is in no attack suite, so it would "
                    "count in no worst case; add it to attack_suites"
                )
    evaluation = config["evaluation"]
    if evaluation["attack_kmeans_seed"] in evaluation["kmeans_seeds"]:
        raise ConfigError(
            f"{source}: evaluation.attack_kmeans_seed: {evaluation['attack_kmeans_seed']} is "
            "also in evaluation.kmeans_seeds; the attacker must not share the scorer's k-means"
        )


def check_class_pairs(config: dict, source: str) -> None:
    """A defense trained on class pairs (robdml.data.batches) needs even batches on every
    dataset it runs on; said here rather than by its training job, hours later."""
    paired = [name for name, p in config["defenses"].items() if p.get("batches") == "class_pairs"]
    for dataset in config["datasets"]:  # the selected ones
        where = f"recipes.{dataset}" if dataset in config["recipes"] else "training"
        recipe = config["recipes"].get(dataset, config["training"])
        if paired and recipe["batch_size"] % 2:
            raise ConfigError(
                f"{source}: {where}.batch_size: {recipe['batch_size']} is odd, but "
                f"{paired[0]!r} trains on class pairs (batches: class_pairs)"
            )


def suite_attacks(config: dict) -> list[str]:
    """Every attack of the suites, label-free first: they run at every eps."""
    suites = config["attack_suites"]
    return list(dict.fromkeys(suites["label_free"] + suites["label_aware"]))


def stronger_variants(config: dict) -> dict[str, dict]:
    """Check (b)'s attacks: each suite attack with more steps and with more restarts. A
    re-fitting attack keeps its number of rounds (`refit_every` scales with `steps`): with
    more rounds, the attacker's choice of the least-agreeing round could return the base
    attack's own result and hide a lack of convergence."""
    variants = {}
    for kind, value in config["sanity"]["stronger"].items():
        for name in suite_attacks(config):
            entry = config["attacks"][name]
            if kind == "restarts":
                changed = {"restarts": value}
            else:  # the same rounds, each `value` times longer
                changed = {
                    key: entry[key] * value for key in ("steps", "refit_every") if key in entry
                }
            variants[variant_name(name, kind, value)] = {**entry, **changed}
    return variants


def variant_name(attack: str, kind: str, value: int) -> str:
    """Name of a stronger variant: refit_steps2x (steps_factor 2), refit_restarts5."""
    return f"{attack}_steps{value}x" if kind == "steps_factor" else f"{attack}_restarts{value}"


def read_config(*overlays: str | Path) -> dict:
    """The default config with each overlay merged over it in order, exactly as Snakemake
    merges `--configfile`s over the Snakefile's `configfile:` (mappings recursively, anything
    else replaced)."""
    config = read_yaml(DEFAULT_CONFIG)
    for path in overlays:
        config = deep_merge(config, read_yaml(path))
    return config


def load_config(*overlays: str | Path) -> dict:
    """Read, validate and resolve the default config with `overlays` merged over it."""
    source = " + ".join(map(str, overlays or [DEFAULT_CONFIG]))
    return validate_config(read_config(*overlays), load_schema(), source=source)


# libyaml's parser where PyYAML was built with it: the Snakefile reads the config and schema
# (thousands of lines) at every snakemake command
FAST_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class UniqueKeyLoader(FAST_SAFE_LOADER):
    """A YAML loader that refuses a key given twice in one mapping (PyYAML keeps the last)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor` may be overridden
                continue
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep)


def read_yaml(path: str | Path) -> dict:
    """A YAML mapping; a missing file, a syntax error or a duplicate key is one line naming
    the file and the line."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        content = yaml.load(path.read_text(), Loader=UniqueKeyLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        raise ConfigError(f"{path}:{mark.line + 1}: {error.problem or error.context}") from None
    if not isinstance(content, dict):
        raise ConfigError(f"{path}: not a YAML mapping of config keys")
    return content


def check(instance, subschema: dict, root: dict, source: str, where: str) -> None:
    """Validate `instance` against `subschema` (refs resolved in `root`); raise a one-liner."""
    validator = Draft202012Validator({**subschema, "$defs": root.get("$defs", {})})
    error = best_match(validator.iter_errors(instance))
    if error is not None:
        raise ConfigError(describe(error, source, where))


def describe(error: ValidationError, source: str, where: str) -> str:
    """One line: file, dotted key path, and what is wrong with it."""
    path = ".".join([where] * bool(where) + [str(part) for part in error.absolute_path])
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(allowed))
        keys = ", ".join(repr(key) for key in unknown)
        return (
            f"{source}: {path or '<top level>'}: unknown key {keys} (allowed: {', '.join(allowed)})"
        )
    return f"{source}: {path or '<top level>'}: {error.message}"


def deep_merge(defaults: dict, overrides: dict) -> dict:
    """`defaults` updated by `overrides`, recursing into nested mappings."""
    merged = copy.deepcopy(defaults)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged
