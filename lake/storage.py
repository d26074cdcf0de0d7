"""Where the lake's Delta tables live: a folder on local disk (the default, ``HOME/lake``) or a prefix of an
S3-compatible object store (``s3://bucket/prefix``), and how each library is told to reach it.

Why a small location type of our own rather than a Path-like wrapper over fsspec: the code touches a table
through delta-rs (which takes a URI and ``storage_options``) and pyarrow (which takes a path and a filesystem);
what it does with the path itself is joining names, naming the table in messages and asking whether a table
is there -- :mod:`lake.delta` answers the last for both kinds. A local location stays a plain
:class:`pathlib.Path`, so the lake on local disk runs exactly as before; an :class:`ObjectLocation` is an
``s3://`` URI that joins like a path. Bronze's writer locks and spooled keys need a real folder, which an
object store is not: an object location carries its *local side* (``HOME/.lake_local/<bucket>/<prefix>/...``)
for them.

Credentials come only from the standard environment variables (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_SESSION_TOKEN``, ``AWS_REGION``, ``AWS_ENDPOINT_URL``, ``AWS_ALLOW_HTTP``), are handed to delta-rs and
pyarrow in memory, and are never written or printed.
"""

from __future__ import annotations

import functools
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

if TYPE_CHECKING:
    import pyarrow.fs as pafs

__all__ = [
    "LOCAL_SIDE",
    "Location",
    "ObjectLocation",
    "arrow_files",
    "as_location",
    "local_side",
    "parse_root",
    "storage_options",
]

#: The folder under HOME that holds an object-store lake's local side (writer locks, spools).
LOCAL_SIDE = ".lake_local"

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


@dataclass(frozen=True)
class ObjectLocation:
    """A folder of an S3-compatible object store, ``s3://bucket/key`` (no trailing slash)."""

    uri: str
    local: Path  # this location's local side: locks and spools (an object store has no rename nor flock)

    def __truediv__(self, name: str | os.PathLike[str]) -> ObjectLocation:
        part = str(name).strip("/")
        return ObjectLocation(f"{self.uri}/{part}", self.local / part) if part else self

    def __str__(self) -> str:
        return self.uri

    @property
    def name(self) -> str:
        return self.uri.rsplit("/", 1)[-1]

    @property
    def parent(self) -> ObjectLocation:
        head = self.uri.rsplit("/", 1)[0]
        return self if head == "s3:/" else ObjectLocation(head, self.local.parent)

    @property
    def bucket(self) -> str:
        return self.uri[len("s3://") :].split("/", 1)[0]


#: Where a lake table is: a local folder or a folder of an object store.
Location = Path | ObjectLocation


def _object_location(uri: str, local_root: Path) -> ObjectLocation:
    parsed = urlparse(uri)
    bucket, key = parsed.netloc, parsed.path.strip("/")
    if not _BUCKET.match(bucket):
        raise ValueError(
            f"{uri!r}: {bucket!r} is not a valid S3 bucket name (3-63 lower-case letters, digits, '.', '-')"
        )
    if parsed.query or parsed.fragment or any(p in ("", ".", "..") for p in key.split("/") if key):
        raise ValueError(
            f"{uri!r}: write the lake root as s3://bucket/prefix (no '.', '..', '//', '?' or '#')"
        )
    return ObjectLocation(f"s3://{bucket}/{key}".rstrip("/"), local_root / bucket / key)


def parse_root(root: str | None, home: Path | str) -> Location:
    """The lake root a deployment declares (``lake.root`` of ``platform.yaml``) for ``home``: None or empty is
    ``HOME/lake``; ``s3://bucket/prefix`` an object store; a local path (relative to HOME) or ``file://`` URI a
    folder. Another scheme is refused, naming it."""
    home = Path(home)
    text = (root or "").strip()
    if not text:
        return home / "lake"
    scheme = urlparse(text).scheme.lower()
    if scheme == "s3":
        return _object_location(text, home / LOCAL_SIDE)
    if scheme == "file":
        return Path(urlparse(text).path)
    if scheme and len(scheme) > 1:  # (one letter: a Windows drive, a path)
        raise ValueError(
            f"lake root {text!r}: the scheme {scheme}:// is not supported (a local path or s3://)"
        )
    return home / Path(text).expanduser()


def as_location(value: Location | str) -> Location:
    """``value`` as a location: locations unchanged, ``s3://`` strings as object locations (their local side
    under the temporary folder), other strings as local paths -- for functions that take either."""
    if isinstance(value, Path | ObjectLocation):
        return value
    if urlparse(value).scheme.lower() == "s3":
        return _object_location(value, Path(tempfile.gettempdir()) / "qst" / LOCAL_SIDE)
    return Path(value)


def local_side(location: Location) -> Path:
    """The local folder standing for ``location`` where a real folder is needed (flock, spool files)."""
    return location if isinstance(location, Path) else location.local


def _environment() -> dict[str, str]:
    """The standard AWS variables that are set (a credential the environment lacks is left to delta-rs' and
    pyarrow's own chains, e.g. an instance role)."""
    env = os.environ
    values = {
        "AWS_ACCESS_KEY_ID": env.get("AWS_ACCESS_KEY_ID", ""),
        "AWS_SECRET_ACCESS_KEY": env.get("AWS_SECRET_ACCESS_KEY", ""),
        "AWS_SESSION_TOKEN": env.get("AWS_SESSION_TOKEN", ""),
        "AWS_REGION": env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION", ""),
        "AWS_ENDPOINT_URL": env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL", ""),
    }
    endpoint = values["AWS_ENDPOINT_URL"]
    allow = env.get("AWS_ALLOW_HTTP", "")
    if endpoint.lower().startswith("http://") and not allow:
        allow = "true"  # a plain-http endpoint (a test server, an on-premises store inside the network)
    values["AWS_ALLOW_HTTP"] = allow
    return {k: v for k, v in values.items() if v}


def storage_options(location: Location | str) -> dict[str, str] | None:
    """delta-rs' ``storage_options`` for ``location``: None on local disk; for an object store the endpoint,
    region and credentials from the environment. Also sets ``AWS_EC2_METADATA_DISABLED=true`` unless the
    environment says otherwise: delta-rs' credential chain would otherwise probe the cloud metadata address
    (seconds of timeouts off the cloud); it reads that setting from the environment only."""
    if isinstance(location, Path) or (
        isinstance(location, str) and urlparse(location).scheme.lower() != "s3"
    ):
        return None
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    return _environment()


@functools.lru_cache(maxsize=4)
def _s3_filesystem(settings: tuple[tuple[str, str], ...]) -> pafs.S3FileSystem:
    import pyarrow.fs as pafs

    options = dict(settings)
    endpoint = urlparse(options["AWS_ENDPOINT_URL"]) if "AWS_ENDPOINT_URL" in options else None
    return pafs.S3FileSystem(
        access_key=options.get("AWS_ACCESS_KEY_ID"),
        secret_key=options.get("AWS_SECRET_ACCESS_KEY"),
        session_token=options.get("AWS_SESSION_TOKEN"),
        region=options.get("AWS_REGION"),
        scheme=endpoint.scheme if endpoint else None,
        endpoint_override=endpoint.netloc if endpoint else None,
    )


def arrow_files(uris: list[str]) -> tuple[list[str], pafs.FileSystem | None]:
    """Parquet file URIs from delta-rs (``DeltaTable.file_uris``) as pyarrow wants them: local paths as they
    are (pyarrow's own local filesystem), ``s3://`` URIs as ``bucket/key`` with an S3 filesystem configured
    from the environment (endpoint, region, credentials) -- explicit, not pyarrow's guess from the URI."""
    if not uris or not uris[0].startswith("s3://"):
        return uris, None
    options = storage_options(uris[0]) or {}
    return [u[len("s3://") :] for u in uris], _s3_filesystem(tuple(sorted(options.items())))
