"""Atomic writes that fail name the target file, not the hidden temp file, and keep the
errno (so callers still say "Permission denied"); the old file and the folder are left
as they were. The OS is faked where root would bypass permissions."""

from __future__ import annotations

import errno
import os

import pytest

from obslib import storage
from obslib.storage import atomic_write_bytes, atomic_write_json


def _eacces(*args, **kwargs):
    raise PermissionError(errno.EACCES, "Permission denied", args[0] if args else None)


@pytest.mark.parametrize("patched", ["replace", "open"])
def test_failed_atomic_write_names_the_target(tmp_path, monkeypatch, patched):
    target = tmp_path / "payload.json"
    target.write_bytes(b"old")
    if patched == "replace":  # the temp file was written; the rename is refused
        monkeypatch.setattr(storage.os, "replace", _eacces)
    else:  # the temp file cannot even be created (mkstemp uses os.open)
        monkeypatch.setattr(storage.tempfile._os, "open", _eacces)
    with pytest.raises(PermissionError) as ei:
        atomic_write_json(target, {"a": 1})
    exc = ei.value
    assert exc.errno == errno.EACCES and exc.strerror == "Permission denied"
    assert exc.filename == str(target)
    assert f"cannot access {exc.filename}: {exc.strerror}" == f"cannot access {target}: Permission denied"
    assert ".tmp" not in str(exc)
    monkeypatch.undo()
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["payload.json"]  # no temp file left


def test_failed_fsync_keeps_errno_and_names_the_target(tmp_path, monkeypatch):
    def eio(fd):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(storage.os, "fsync", eio)
    with pytest.raises(OSError) as ei:
        atomic_write_bytes(tmp_path / "x.bin", b"data")
    assert (ei.value.errno, ei.value.filename) == (errno.EIO, str(tmp_path / "x.bin"))
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only folder anyway")
def test_read_only_folder_names_the_target(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(PermissionError) as ei:
            atomic_write_bytes(folder / "a.json", b"{}")
        assert ei.value.filename == str(folder / "a.json")
    finally:
        folder.chmod(0o755)
