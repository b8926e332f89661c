"""What code a workflow job runs, by content: a hash of its step script and of every robdml
module the script imports (directly or through other robdml modules), with comments,
docstrings and layout left out.

A rule passes it as a param, so Snakemake's params trigger reruns exactly the jobs whose code
changed, while the scripts themselves are `ancient()` inputs: a fresh clone (new file times)
or a comment-only edit reruns nothing. Only the standard library is used: the Snakefile calls
it while planning.
"""

import ast
import hashlib
from functools import cache
from pathlib import Path

PACKAGE = "robdml"


def code_version(script: str | Path, src: str | Path) -> str:
    """Short hash of `script` and the robdml modules under `src` it imports."""
    src = Path(src).resolve()
    digest = hashlib.sha256()
    for path in sorted(imported_files(Path(script), src)):
        name = path.relative_to(src) if path.is_relative_to(src) else path.name
        digest.update(f"{name}\0{normalized_source(path)}\0".encode())
    return digest.hexdigest()[:16]


def imported_files(script: Path, src: Path) -> set[Path]:
    """`script` and every robdml module file it reaches through imports."""
    seen, todo = set(), [script.resolve()]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        todo += [file for module in imported_modules(path) for file in module_files(module, src)]
    return seen


@cache
def imported_modules(path: Path) -> tuple[str, ...]:
    """Dotted names of the robdml modules (and candidate submodules) `path` imports anywhere,
    lazy imports inside functions included."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            names += [f"{node.module}.{alias.name}" for alias in node.names]
    return tuple(name for name in names if name.split(".")[0] == PACKAGE)


def module_files(module: str, src: Path) -> list[Path]:
    """The files Python runs to import `module`: its own and its packages' `__init__.py`
    (a name that is no module, e.g. a function imported from one, gives none of its own)."""
    parts = module.split(".")
    files = [src.joinpath(*parts[:end], "__init__.py") for end in range(1, len(parts) + 1)]
    files.append(src.joinpath(*parts).with_suffix(".py"))
    return [file.resolve() for file in files if file.is_file()]


@cache
def normalized_source(path: Path) -> str:
    """The module's syntax tree without docstrings: equal for edits of comments, docstrings,
    blank lines or formatting."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree)
