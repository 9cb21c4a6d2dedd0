"""File-system adapter of the BlobStore port (`make serve`, STORAGE=sqlite): one file per blob under a root.

A key maps to a path under the root (``files/<ws>/<id>`` → ``<root>/files/<ws>/<id>``), so the
data stays inspectable and a prefix delete is a directory removal. Semantics follow S3Blobs:
a missing key reads as None, ``max_age_s`` compares with the time the blob was written (a copy
is a new write), deletes of missing keys are quiet, a prefix is a string prefix.

Writes are atomic: the bytes go to a temporary dot-file in the key's directory, then are
renamed over the key, so a reader sees the old blob or the new one, never part of one, and a
crash leaves at most an invisible temporary file. Durability matches the SQLite database's:
what was acknowledged survives the process being killed, not a power cut (no fsync per write).

The store never leaves its root: keys with empty, ``.``-leading (so ``..`` and our temporary
names), absolute or NUL segments are refused, and every path is walked one directory at a time
from a descriptor of the root with ``O_NOFOLLOW`` (``openat``), so a symbolic link planted
anywhere under the root is never followed, even if it appears between a check and a use.

Downloads go through signed URLs served by ``local/blob_route.py``: HMAC-SHA256 over the key,
the expiry and the file name, checked in constant time; the bytes stream in chunks. Signed
uploads are S3's presigned POST, locally: a policy (exact key, expiry, size range) signed the
same way, answered by the same route.

Large uploads are *staged*: written under ``<root>/.staging/<token>`` (a dot-name, so never a
key, never served) while they arrive, then adopted by renaming them onto their key (same file
system: no copy) once the request that brought them is validated, or removed. The staging area
is emptied when the server starts (whatever was there belonged to requests that died with it).
"""

from __future__ import annotations

import base64
import errno
import hashlib
import hmac
import json
import mimetypes
import os
import re
import secrets
import shutil
import stat
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote, urlencode

from .disk_reserve import DiskReserve

SIGNED_PATH = "/_blobs/"
CHUNK_BYTES = 1 << 20
MAX_KEY_BYTES = 1024  # S3's limit
MAX_SEGMENT_BYTES = 255  # NAME_MAX
STAGING_DIR = ".staging"
_TOKEN = re.compile(r"[0-9a-f]{32}")

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: a FIFO planted under the root must not hang a reader (no effect on regular files).
_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
# What opening a path component that is a link, or not a directory, fails with.
_NOT_A_PLAIN_PATH = (errno.ELOOP, errno.ENOTDIR, errno.EMLINK)


class UnsafeKey(ValueError):
    """A key that could name something outside the store, or that no blob can have."""


def key_parts(key: str) -> list[str]:
    if not isinstance(key, str) or not key or len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise UnsafeKey(f"blob key {key!r}: 1 to {MAX_KEY_BYTES} bytes required")
    parts = key.split("/")
    for part in parts:
        if not part or part.startswith(".") or "\0" in part or len(part.encode("utf-8", "surrogatepass")) > MAX_SEGMENT_BYTES:
            raise UnsafeKey(f"blob key {key!r}: segments must be non-empty, not start with '.', hold no NUL "
                            f"and be at most {MAX_SEGMENT_BYTES} bytes")
    return parts


class BlobReader:
    """An open blob: its size and write time now, its bytes in chunks when iterated. Iterating to
    the end closes it; a consumer that stops early calls close()."""

    def __init__(self, file: BinaryIO, size: int, mtime: float, chunk_bytes: int = CHUNK_BYTES) -> None:
        self.file = file
        self.size = size
        self.mtime = mtime
        self.chunk_bytes = chunk_bytes

    def __iter__(self) -> Iterator[bytes]:
        try:
            while chunk := self.file.read(self.chunk_bytes):
                yield chunk
        finally:
            self.close()

    def read(self) -> bytes:
        with self.file:
            return self.file.read()

    def close(self) -> None:
        self.file.close()


class FileBlobs:
    def __init__(self, root: Path | str, signing_key: bytes, public_url: str,
                 reserve: DiskReserve | None = None) -> None:
        if len(signing_key) < 16:
            raise ValueError("signing_key: at least 16 bytes (signed URLs are only as strong as it)")
        self.root = Path(root).resolve()  # a link *to* the root is the operator's choice; none under it is followed
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.signing_key = signing_key
        self.public_url = public_url.rstrip("/")
        # Every chunk written checks it: a write that would eat into the reserve stops there and
        # leaves nothing behind (deletes, renames and reads never check).
        self.reserve = reserve

    # -- the BlobStore port -------------------------------------------------------------------
    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        # One retry: a concurrent delete_prefix may remove the directory between mkdir and rename.
        try:
            self.put_stream(key, (data,), content_type)
        except FileNotFoundError:
            self.put_stream(key, (data,), content_type)

    def put_stream(self, key: str, chunks: Iterable[bytes], content_type: str = "application/octet-stream") -> None:
        """put() for bytes that arrive in pieces (large uploads): never held in memory whole.
        The content type is not kept: downloads take theirs from the file name."""
        parts = key_parts(key)
        directory = self._walk(parts[:-1], create=True)
        assert directory is not None
        try:
            _write_atomic(directory, parts[-1], self._guarded(chunks))
        finally:
            os.close(directory)

    def _guarded(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            if self.reserve is not None:
                self.reserve.check(len(chunk))
            yield chunk

    def get(self, key: str, max_age_s: float | None = None) -> bytes | None:
        reader = self.open(key, max_age_s)
        return None if reader is None else reader.read()

    def copy(self, source: str, key: str, max_age_s: float | None = None) -> bool:
        """A new blob with the source's bytes (and a new write time, as S3's CopyObject); False if
        the source is missing or older than ``max_age_s``."""
        key_parts(key)
        reader = self.open(source, max_age_s)
        if reader is None:
            return False
        with reader.file:
            self.put_stream(key, reader)
        return True

    def delete(self, key: str) -> None:
        parts = key_parts(key)
        directory = self._walk(parts[:-1], create=False)
        if directory is None:
            return
        try:
            os.unlink(parts[-1], dir_fd=directory)  # a link is removed itself, its target never
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError):
            pass  # nothing is stored under that key (a directory is a prefix, not a blob)
        finally:
            os.close(directory)

    def delete_prefix(self, prefix: str) -> int:
        """Every blob whose key starts with ``prefix``; a directory the prefix names whole goes too.
        Returns the bytes the removed blobs held."""
        *dirs, start = prefix.split("/")
        if dirs:
            key_parts("/".join(dirs))
        if "\0" in start or start.startswith("."):
            raise UnsafeKey(f"blob prefix {prefix!r}")
        parent = self._walk(dirs[:-1], create=False) if dirs else None
        if dirs and parent is None:
            return 0
        directory = self._walk(dirs, create=False)
        removed = 0
        try:
            if directory is None:
                return 0
            with os.scandir(directory) as entries:
                names = [(e.name, e.is_dir(follow_symlinks=False)) for e in entries if e.name.startswith(start)]
            for name, is_dir in names:
                # rmtree with dir_fd works on descriptors and never follows a link (rmtree.avoids_symlink_attacks).
                if is_dir:
                    removed += _bytes_under(directory, name)
                    shutil.rmtree(name, dir_fd=directory, ignore_errors=True)
                else:
                    with suppress(FileNotFoundError):
                        info = os.stat(name, dir_fd=directory, follow_symlinks=False)
                        os.unlink(name, dir_fd=directory)
                        removed += info.st_size if stat.S_ISREG(info.st_mode) and not name.startswith(".") else 0
            if start == "" and parent is not None:  # the prefix named this directory whole: S3 has no empty folders
                with suppress(OSError):
                    os.rmdir(dirs[-1], dir_fd=parent)
        finally:
            for fd in (directory, parent):
                if fd is not None:
                    os.close(fd)
        return removed

    def signed_url(self, key: str, expiry_s: int, filename: str) -> str:
        key_parts(key)
        expires = int(time.time()) + int(expiry_s)
        query = urlencode({"expires": expires, "filename": filename, "signature": self._sign(key, expires, filename)})
        return f"{self.public_url}{SIGNED_PATH}{quote(key, safe='/')}?{query}"

    def size(self, key: str, max_age_s: float | None = None) -> int | None:
        """The blob's size; None if missing or older than ``max_age_s``."""
        reader = self.open(key, max_age_s)
        if reader is None:
            return None
        reader.close()
        return reader.size

    def stream(self, key: str) -> BlobReader | None:
        """The blob's bytes in chunks (close() it if you stop early), or None if missing."""
        return self.open(key)

    def move(self, source: str, key: str) -> bool:
        """Rename a blob onto another key (atomic, no copy); False if the source is missing."""
        parts, source_parts = key_parts(key), key_parts(source)
        origin = self._walk(source_parts[:-1], create=False)
        if origin is None:
            return False
        try:
            directory = self._walk(parts[:-1], create=True)
            assert directory is not None
            try:
                os.replace(source_parts[-1], parts[-1], src_dir_fd=origin, dst_dir_fd=directory)
            except FileNotFoundError:
                return False
            finally:
                os.close(directory)
        finally:
            os.close(origin)
        return True

    def keys(self, prefix: str) -> list[str]:
        """The keys under a directory prefix (``uploads/<ws>/``), at any depth, as S3 lists them."""
        dirs = prefix.rstrip("/").split("/") if prefix.strip("/") else []
        if dirs:
            key_parts("/".join(dirs))
        directory = self._walk(dirs, create=False)
        if directory is None:
            return []
        found: list[str] = []
        try:
            for top, _, names, top_fd in os.fwalk(".", dir_fd=directory):
                base = "/".join([*dirs, *Path(top).parts])
                for name in names:
                    if not name.startswith(".") and stat.S_ISREG(os.stat(name, dir_fd=top_fd,
                                                                         follow_symlinks=False).st_mode):
                        found.append(f"{base}/{name}" if base else name)
        finally:
            os.close(directory)
        return sorted(found)

    def total_size(self, prefix: str) -> int:
        """The bytes of the blobs under a directory prefix (``files/<ws>/``), at any depth."""
        dirs = prefix.rstrip("/").split("/") if prefix.strip("/") else []
        if dirs:
            key_parts("/".join(dirs))
        parent = self._walk(dirs[:-1], create=False) if dirs else None
        if dirs and parent is None:
            return 0
        try:
            if not dirs:
                root = os.open(self.root, _DIR)
                try:
                    return _bytes_under(root, ".")
                finally:
                    os.close(root)
            assert parent is not None
            return _bytes_under(parent, dirs[-1])
        finally:
            if parent is not None:
                os.close(parent)

    def presigned_post(self, key: str, expiry_s: int, max_bytes: int, min_bytes: int = 0) -> dict[str, Any]:
        """S3's presigned POST, locally: the form fields a client sends, with its file last, to the
        returned URL. The policy names the exact key, an expiry and the size range; its HMAC signs it."""
        key_parts(key)
        policy = json.dumps({"key": key, "expires": int(time.time()) + int(expiry_s), "min": int(min_bytes),
                             "max": int(max_bytes)}, separators=(",", ":"))
        encoded = base64.urlsafe_b64encode(policy.encode()).decode()
        return {"url": f"{self.public_url}{SIGNED_PATH}", "fields": {"key": key, "policy": encoded,
                                                                      "signature": self._sign_text(encoded)}}

    def verify_post(self, fields: dict[str, str]) -> dict[str, Any] | None:
        """The policy of a signed POST whose signature, key and expiry hold; None otherwise."""
        encoded, signature = fields.get("policy", ""), fields.get("signature", "")
        if not hmac.compare_digest(self._sign_text(encoded).encode(), signature.encode("utf-8", "replace")):
            return None
        try:
            policy = json.loads(base64.urlsafe_b64decode(encoded.encode()))
        except ValueError:
            return None
        if policy.get("key") != fields.get("key") or time.time() > int(policy.get("expires", 0)):
            return None
        return dict(policy)

    # -- staging: large uploads, written once, adopted by a rename ---------------------------------
    def stage(self) -> StagedBlob:
        """A new staging file for bytes that are still arriving."""
        token = uuid.uuid4().hex
        directory = self._staging_dir()
        try:
            fd = os.open(token, _CREATE, 0o600, dir_fd=directory)
        finally:
            os.close(directory)
        return StagedBlob(self, token, os.fdopen(fd, "wb"))

    def open_staged(self, token: str) -> BlobReader | None:
        if not _TOKEN.fullmatch(str(token)):
            return None
        directory = self._staging_dir()
        try:
            fd = os.open(token, _READ, dir_fd=directory)
        except FileNotFoundError:
            return None
        finally:
            os.close(directory)
        info = os.fstat(fd)
        return BlobReader(os.fdopen(fd, "rb"), info.st_size, info.st_mtime)

    def adopt(self, token: str, key: str) -> bool:
        """Make a staged file the blob at ``key`` (a rename within the root); False if it is gone."""
        if not _TOKEN.fullmatch(str(token)):
            return False
        parts = key_parts(key)
        staging = self._staging_dir()
        try:
            directory = self._walk(parts[:-1], create=True)
            assert directory is not None
            try:
                os.replace(token, parts[-1], src_dir_fd=staging, dst_dir_fd=directory)
            except FileNotFoundError:
                return False
            finally:
                os.close(directory)
        finally:
            os.close(staging)
        return True

    def discard(self, token: str) -> None:
        if not _TOKEN.fullmatch(str(token)):
            return
        staging = self._staging_dir()
        try:
            with suppress(FileNotFoundError):
                os.unlink(token, dir_fd=staging)
        finally:
            os.close(staging)

    def clear_staging(self) -> int:
        """Remove every staged file (at start-up: their requests died with the last server)."""
        staging = self._staging_dir()
        removed = 0
        try:
            for name in os.listdir(staging):
                with suppress(FileNotFoundError, IsADirectoryError):
                    os.unlink(name, dir_fd=staging)
                    removed += 1
        finally:
            os.close(staging)
        return removed

    def _staging_dir(self) -> int:
        root = os.open(self.root, _DIR)
        try:
            with suppress(FileExistsError):
                os.mkdir(STAGING_DIR, 0o700, dir_fd=root)
            return os.open(STAGING_DIR, _DIR, dir_fd=root)
        finally:
            os.close(root)

    # -- signed downloads -------------------------------------------------------------------------
    def signed_path(self, key: str, expiry_s: int, filename: str) -> str:
        """A signed URL's path and query, without the public address (the local front end's
        internal redirects serve it itself)."""
        return self.signed_url(key, expiry_s, filename)[len(self.public_url):]

    def _sign_text(self, text: str) -> str:
        return hmac.new(self.signing_key, b"post\0" + text.encode(), hashlib.sha256).hexdigest()

    def _sign(self, key: str, expires: int, filename: str) -> str:
        # JSON of the three fields: unambiguous whatever characters the key or the name hold.
        message = json.dumps([key, expires, filename]).encode()
        return hmac.new(self.signing_key, message, hashlib.sha256).hexdigest()

    def verify(self, key: str, expires: int | str, signature: str, filename: str = "") -> bool:
        """Whether a signed URL's fields are ours and not yet expired (constant-time comparison)."""
        try:
            expiry = int(expires)
        except (TypeError, ValueError):
            return False
        expected = self._sign(key, expiry, filename).encode()
        if not hmac.compare_digest(expected, str(signature).encode("utf-8", "replace")):
            return False
        return time.time() <= expiry

    def content_type(self, filename: str) -> str:
        return mimetypes.guess_type(filename)[0] or "application/octet-stream"

    def open(self, key: str, max_age_s: float | None = None, chunk_bytes: int = CHUNK_BYTES) -> BlobReader | None:
        """The blob, open for streaming (its bytes stay consistent even if it is replaced meanwhile),
        or None if missing, older than ``max_age_s``, or not a regular file."""
        parts = key_parts(key)
        directory = self._walk(parts[:-1], create=False)
        if directory is None:
            return None
        try:
            fd = os.open(parts[-1], _READ, dir_fd=directory)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno in _NOT_A_PLAIN_PATH:
                return None
            raise
        finally:
            os.close(directory)
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or (max_age_s is not None and time.time() - info.st_mtime > max_age_s):
            os.close(fd)
            return None
        return BlobReader(os.fdopen(fd, "rb"), info.st_size, info.st_mtime, chunk_bytes)

    # -- paths --------------------------------------------------------------------------------
    def _walk(self, parts: list[str], create: bool) -> int | None:
        """A descriptor of the directory ``root/parts...``, reached without following any link;
        None when it does not exist (or is not a plain directory) and ``create`` is off."""
        fd = os.open(self.root, _DIR)
        try:
            for part in parts:
                try:
                    child = os.open(part, _DIR, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        os.close(fd)
                        return None
                    with suppress(FileExistsError):
                        os.mkdir(part, 0o700, dir_fd=fd)
                    child = os.open(part, _DIR, dir_fd=fd)
                except OSError as exc:
                    if exc.errno not in _NOT_A_PLAIN_PATH:
                        raise
                    if not create:
                        os.close(fd)
                        return None
                    raise UnsafeKey(f"blob path component {part!r} under {self.root} is a link or a file; "
                                    "the store does not follow it") from exc
                os.close(fd)
                fd = child
        except BaseException:
            with suppress(OSError):
                os.close(fd)
            raise
        return fd


class StagedBlob:
    """A staging file being written: ``write`` chunks, then ``close``; ``token`` names it for
    ``FileBlobs.adopt`` / ``discard``."""

    def __init__(self, blobs: FileBlobs, token: str, file: BinaryIO) -> None:
        self.blobs = blobs
        self.token = token
        self.file = file
        self.size = 0

    def write(self, chunk: bytes) -> None:
        if self.blobs.reserve is not None:
            self.blobs.reserve.check(len(chunk))
        self.file.write(chunk)
        self.size += len(chunk)

    def close(self) -> None:
        self.file.close()

    def discard(self) -> None:
        self.file.close()
        self.blobs.discard(self.token)


def signing_key_at(path: Path | str) -> bytes:
    """The key for signed URLs kept at ``path`` (e.g. DATA_DIR/blob-signing.key), made on first use:
    32 random bytes, mode 0600, so URLs already handed out stay valid across restarts. Created
    whole or not at all (written aside, then hard-linked into place), so a crash cannot leave
    an empty key, and two processes starting at once agree on one."""
    path = Path(path)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not path.exists():
        aside = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        fd = os.open(aside, _CREATE, 0o600)
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(secrets.token_bytes(32))
                file.flush()
                os.fsync(file.fileno())
            with suppress(FileExistsError):
                os.link(aside, path)
        finally:
            aside.unlink(missing_ok=True)
    key = path.read_bytes()
    if len(key) < 16:
        raise ValueError(f"{path}: a signing key of at least 16 bytes is required; remove the file to make a new one")
    return key


def _bytes_under(directory: int, name: str) -> int:
    """The bytes of the regular, key-named files under ``name`` (a directory of ``directory``),
    walked without following links; 0 if it is not a directory."""
    total = 0
    try:
        for _top, dirs, names, top_fd in os.fwalk(name, dir_fd=directory):
            dirs[:] = [d for d in dirs if not d.startswith(".")]  # the staging area: not blobs
            for file_name in names:
                if file_name.startswith("."):
                    continue  # temporary files: not a blob
                with suppress(FileNotFoundError):
                    info = os.stat(file_name, dir_fd=top_fd, follow_symlinks=False)
                    if stat.S_ISREG(info.st_mode):
                        total += info.st_size
    except (FileNotFoundError, NotADirectoryError):
        return 0
    return total


def _write_atomic(directory: int, name: str, chunks: Iterable[bytes]) -> None:
    """Write to a temporary name, then rename over the key: a reader, or a server killed at any
    point, sees the old blob or the new one, never a part. No fsync: like the SQLite database
    (synchronous=NORMAL), what the API acknowledged survives the process being killed; only a
    power cut can lose the last writes (each fsync cost a turn milliseconds of disk latency)."""
    temporary = f".{uuid.uuid4().hex}.tmp"  # a dot-name: never a key, never listed, never served
    fd = os.open(temporary, _CREATE, 0o600, dir_fd=directory)
    try:
        with os.fdopen(fd, "wb") as file:
            for chunk in chunks:
                file.write(chunk)
        os.replace(temporary, name, src_dir_fd=directory, dst_dir_fd=directory)
    except BaseException:
        with suppress(OSError):
            os.unlink(temporary, dir_fd=directory)
        raise
