"""``sindri push`` / ``pull``: copy files and folders, skipping unchanged ones.

On an SSH environment the copy goes over SFTP on the environment's connection;
on a local one it is a plain copy into its working folder. Either way a file
whose size and modification time match is skipped on repeat.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sindri_jupyter.errors import UsageError

Progress = Callable[[str], None]


@dataclass
class Copied:
    copied: int = 0
    skipped: int = 0


async def push(name: str, path: str, remote: str | None, progress: Progress) -> Copied:
    record, kind = _record(name)
    if kind == "ssh":
        from sindri_jupyter.remote.sshhost import SSHHost

        return await SSHHost.for_record(record).push(path, remote, progress)
    base = Path(record.handle_data.get("cwd") or ".")
    return copy_tree(Path(path), _under(base, remote or Path(path).name), progress)


async def pull(name: str, remote: str, path: str | None, progress: Progress) -> Copied:
    record, kind = _record(name)
    if kind == "ssh":
        from sindri_jupyter.remote.sshhost import SSHHost

        return await SSHHost.for_record(record).pull(remote, path, progress)
    base = Path(record.handle_data.get("cwd") or ".")
    source = _under(base, remote)
    return copy_tree(source, Path(path or source.name), progress)


def _record(name: str):
    from sindri_jupyter.core.state import Store

    record = Store.default().get(name)
    return record, (record.endpoint or {}).get("kind", "local")


def _under(base: Path, relative: str) -> Path:
    target = Path(relative).expanduser()
    return target if target.is_absolute() else base / target


def copy_tree(source: Path, target: Path, progress: Progress) -> Copied:
    """Copy a file or folder; skip files whose size and mtime already match."""
    if not source.exists():
        raise UsageError(f"{source} does not exist", hint="check the path and try again")
    result = Copied()
    files = [source] if source.is_file() else sorted(p for p in source.rglob("*")
                                                     if p.is_file())
    for file in files:
        dest = target if source.is_file() else target / file.relative_to(source)
        if _same(file, dest):
            result.skipped += 1
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(file, dest)
        result.copied += 1
        progress(f"  {file} -> {dest} ({file.stat().st_size} bytes)")
    return result


def _same(a: Path, b: Path) -> bool:
    if not b.exists():
        return False
    sa, sb = a.stat(), b.stat()
    return sa.st_size == sb.st_size and int(sa.st_mtime) == int(sb.st_mtime)
