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
    for path in sorted(imported_files(Path(script).resolve(), src)):
        name = path.relative_to(src) if path.is_relative_to(src) else path.name
        digest.update(f"{name}\0{read_module(path)[1]}\0".encode())
    return digest.hexdigest()[:16]


def imported_files(script: Path, src: Path) -> set[Path]:
    """`script` and every robdml module file it reaches through imports."""
    seen, todo = set(), [script]
    while todo:
        path = todo.pop()
        if path not in seen:
            seen.add(path)
            todo += [file for module in read_module(path)[0] for file in module_files(module, src)]
    return seen


@cache
def read_module(path: Path) -> tuple[tuple[str, ...], str]:
    """The robdml modules `path` imports anywhere (lazy imports inside functions included),
    and a hash of its syntax tree without docstrings: equal for edits of comments,
    docstrings, blank lines or formatting."""
    tree = ast.parse(path.read_text(), filename=str(path))
    imports = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imports += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imports += [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        elif isinstance(node, DOCUMENTED) and has_docstring(node):
            node.body = node.body[1:] or [ast.Pass()]
    own = tuple(name for name in imports if name.split(".")[0] == PACKAGE)
    return own, hashlib.sha256(ast.dump(tree).encode()).hexdigest()


DOCUMENTED = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


def has_docstring(node: ast.AST) -> bool:
    first = node.body[0] if node.body else None
    return (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    )


@cache
def module_files(module: str, src: Path) -> tuple[Path, ...]:
    """The files Python runs to import `module`: its own and its packages' `__init__.py`
    (a name that is no module, e.g. a function imported from one, gives none of its own)."""
    parts = module.split(".")
    files = [src.joinpath(*parts[:end], "__init__.py") for end in range(1, len(parts) + 1)]
    files.append(src.joinpath(*parts).with_suffix(".py"))
    return tuple(file for file in files if file.is_file())
