"""An external model's `factory`, 'path/to/file.py:function', read in this one place: the
config checks its file exists (robdml.config), the model files import its function
(robdml.models.external). Standard library only, so every rule's environment has it."""


def split_factory(factory: str) -> tuple[str, str]:
    """(file, function) of a `factory`."""
    path, _, function = factory.rpartition(":")
    return path, function


def factory_file(entry: dict) -> str:
    """The Python file of an external model entry's `factory`."""
    return split_factory(entry["factory"])[0]
