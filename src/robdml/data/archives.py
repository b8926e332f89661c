"""Extracting dataset archives (.tgz/.tar/.tar.gz/.zip) without letting them write outside the
target folder.

Every member is checked before anything is written, so a hostile or corrupted archive is refused
as a whole rather than half-extracted: absolute names, `..` components, links that point outside
the target and device files are refused. Tar members are then written with Python's `data`
filter as a second line of defence (it resolves links on disk, which catches chains of links
that each look harmless on their own).
"""

import posixpath
import re
import tarfile
import zipfile
import zlib
from pathlib import Path

ARCHIVE_SUFFIXES = (".tgz", ".tar", ".tar.gz", ".zip")


class UnsafeArchiveError(ValueError):
    """An archive member would be written outside the target folder."""


class CorruptArchiveError(ValueError):
    """A raw file that cannot be read as what its name says: truncated, or a web page."""


def is_html(path: str | Path) -> bool:
    """Whether a file is a web page (what a browser saves when a download link has expired)."""
    with open(path, "rb") as file:
        head = file.read(1024).lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html")) or b"<html" in head


def check_not_html(path: str | Path) -> None:
    if is_html(path):
        raise CorruptArchiveError(
            f"{path}: an HTML page, not the dataset file (a browser saves one when a download "
            "link has expired or needs a login); delete it and download the file again"
        )


def is_archive(name: str) -> bool:
    return name.endswith(ARCHIVE_SUFFIXES)


def extract(archive: str | Path, target: str | Path) -> None:
    """Extract `archive` into the existing folder `target` after checking every member; an
    unreadable archive (truncated, damaged, a web page) is one CorruptArchiveError."""
    archive = Path(archive)
    check_not_html(archive)
    try:
        extract_checked(archive, Path(target))
    except (tarfile.ReadError, tarfile.CompressionError, zipfile.BadZipFile, EOFError,
            zlib.error) as error:  # fmt: skip
        reason = " ".join(str(error).split()) or type(error).__name__
        raise CorruptArchiveError(
            f"{archive}: cannot be read as an archive, truncated or damaged ({reason}); delete "
            "it and download or place it again"
        ) from None


def extract_checked(archive: Path, target: Path) -> None:
    """Every member checked first, then all extracted, counted on a progress bar (tqdm, on a
    terminal: CUB's 12,000 images take a while)."""
    if archive.name.endswith(".zip"):
        with zipfile.ZipFile(archive) as zipped:
            members = zipped.infolist()
            for info in members:
                check_member(archive, info.filename, "file")
            zipped.extractall(target, members=progress(members, archive))
        return
    with tarfile.open(archive) as tarred:
        members = tarred.getmembers()
        for member in members:
            check_member(archive, member.name, tar_kind(member), member.linkname)
        try:
            tarred.extractall(target, members=progress(members, archive), filter="data")
        except tarfile.FilterError as error:  # e.g. a chain of links that leaves the target
            raise UnsafeArchiveError(f"{archive}: refusing {error}") from error


def progress(members: list, archive: Path):
    from tqdm import tqdm  # here, not above: robdml.config's planning imports this module

    return tqdm(members, desc=f"extracting {archive.name}", unit=" files", mininterval=5,
                disable=None)  # fmt: skip


def tar_kind(member: tarfile.TarInfo) -> str:
    if member.issym():
        return "symlink"
    if member.islnk():
        return "hardlink"
    if member.isfile() or member.isdir():
        return "file"
    return "special"


def check_member(archive: Path, name: str, kind: str, linkname: str = "") -> None:
    """Raise UnsafeArchiveError if writing member `name` could touch anything outside the
    target: an absolute name, a `..` component, a link leaving the target, a device file."""
    if kind == "special":
        raise UnsafeArchiveError(f"{archive}: refusing special file member {name!r}")
    if escapes(name):
        raise UnsafeArchiveError(f"{archive}: refusing member {name!r} (absolute or '..' path)")
    if kind == "symlink":
        # a symlink's target is relative to the folder holding the link
        resolved = posixpath.join(posixpath.dirname(name.replace("\\", "/")), linkname)
    elif kind == "hardlink":
        resolved = linkname  # a hard link names another member, relative to the archive root
    else:
        return
    if escapes(posixpath.normpath(resolved)):
        raise UnsafeArchiveError(
            f"{archive}: refusing {kind} member {name!r} -> {linkname!r} (points outside)"
        )


def escapes(name: str) -> bool:
    """Whether a member name is absolute (POSIX or Windows drive) or climbs with `..`."""
    name = name.replace("\\", "/")
    return name.startswith("/") or bool(re.match(r"[A-Za-z]:", name)) or ".." in name.split("/")
