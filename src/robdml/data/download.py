"""Fetching one raw dataset file over HTTP(S): retried, resumed, verified before it appears.

Bytes go to `<file>.part` next to the destination; only a download whose md5 matches is renamed
to the destination, so a failure never leaves a file that later steps could mistake for data.
A transfer cut by the network keeps `<file>.part`, and the next attempt (or run) asks the server
for the rest with an HTTP Range request; a checksum mismatch deletes it. Hand-written because
of that resume: `torch.hub.download_url_to_file` and `pooch.retrieve` restart a cut 1.1 GB
archive from zero. A progress bar (tqdm, on a terminal) shows the bytes received.
"""

import hashlib
import logging
import os
import time
import urllib.error
import urllib.request
from http.client import HTTPException
from pathlib import Path

log = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 20
RETRY_HTTP_CODES = {408, 429, 500, 502, 503, 504}  # worth another try; other errors are final


class ChecksumError(ValueError):
    """A file's md5 differs from the expected one."""


class DownloadError(RuntimeError):
    """Every attempt to fetch a URL failed."""


def md5sum(path: str | Path) -> str:
    """Hex md5 of a file, read in chunks (the archives are gigabytes)."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as file:
        while chunk := file.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def verify_md5(path: str | Path, expected: str, note: str = "", shown_as: str = "") -> None:
    """Raise ChecksumError naming the file (`shown_as`, default `path`), the expected and the
    actual md5 when they differ."""
    actual = md5sum(path)
    if actual != expected.lower():
        raise ChecksumError(f"{shown_as or path}: md5 is {actual}, expected {expected}{note}")


def download(
    url: str,
    destination: str | Path,
    md5: str | None,
    attempts: int = 5,
    timeout_s: float = 60,
    backoff_s: float = 2,
) -> None:
    """Fetch `url` to `destination`, retrying `attempts` times with exponential backoff and
    resuming from the bytes already received; verify `md5` (None: not verified) before the
    file appears under its final name."""
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    part = destination.with_name(destination.name + ".part")
    for attempt in range(1, attempts + 1):
        try:
            fetch_rest(url, part, timeout_s)
            break
        except (HTTPException, OSError) as error:  # OSError covers URLError and timeouts
            if isinstance(error, urllib.error.HTTPError) and error.code not in RETRY_HTTP_CODES:
                raise DownloadError(f"{url}: HTTP {error.code} {error.reason}") from error
            if attempt == attempts:
                raise DownloadError(
                    f"{url}: {attempts} attempts failed, last: {error}; {kept(part)}"
                ) from error
            wait = backoff_s * 2 ** (attempt - 1)
            log.warning(
                "attempt %d/%d failed (%s); retrying in %.0f s", attempt, attempts, error, wait
            )
            time.sleep(wait)
    shown_as = f"{destination} (downloaded from {url}, not kept)"  # not the .part deleted here
    try:
        if md5 is not None:
            verify_md5(part, md5, shown_as=shown_as)
    except ChecksumError:
        part.unlink()
        raise
    if md5 is None:
        log.warning("%s: no md5 configured, the download is not verified", destination)
    os.replace(part, destination)


def kept(part: Path) -> str:
    """What a failed download leaves behind, in words: the bytes the next run resumes from, or
    nothing (an empty `part` is removed)."""
    size = part.stat().st_size if part.exists() else 0
    if not size:
        part.unlink(missing_ok=True)
        return "no bytes were received, so nothing is kept"
    return f"the {size} bytes received so far are kept in {part} and the next run resumes from them"


def fetch_rest(url: str, part: Path, timeout_s: float) -> None:
    """Append to `part` what the server has beyond its current size; restart from zero when
    the server ignores the Range header."""
    offset = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout_s)
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset:  # nothing beyond what we have: the file is complete
            return
        raise
    with response:
        resumed = response.status == 206
        if resumed and not response.headers.get("Content-Range", "").startswith(f"bytes {offset}-"):
            part.unlink()  # an answer for another offset: start again from zero
            raise HTTPException("server answered the Range request for another offset")
        if offset and not resumed:
            log.info("server ignored the Range request: downloading %s from the start", url)
        from tqdm import tqdm  # here, not above: robdml.config's planning imports this module

        expected_bytes = response.headers.get("Content-Length")
        received = 0
        already = offset if resumed else 0
        total = already + int(expected_bytes) if expected_bytes is not None else None
        progress = tqdm(
            total=total, initial=already, unit="B", unit_scale=True, unit_divisor=1024,
            desc=part.name.removesuffix(".part"), mininterval=5, disable=None,
        )  # fmt: skip
        with progress, open(part, "ab" if resumed else "wb") as file:
            while chunk := response.read(CHUNK_BYTES):
                file.write(chunk)
                received += len(chunk)
                progress.update(len(chunk))
    if expected_bytes is not None and received != int(expected_bytes):
        raise HTTPException(f"connection closed after {received} of {expected_bytes} bytes")
    log.info("%s: received %d bytes (%s)", url, received, "resumed" if resumed else "complete")
