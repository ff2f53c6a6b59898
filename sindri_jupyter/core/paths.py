"""Where sindri keeps its state: ``SINDRI_HOME`` or the platform's data dir."""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """The state directory, created with mode 0700 on first use."""
    configured = os.environ.get("SINDRI_HOME")
    if configured:
        path = Path(configured).expanduser()
    else:
        from platformdirs import user_data_dir

        path = Path(user_data_dir("sindri-jupyter", appauthor=False))
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        from sindri_jupyter.errors import StateError

        raise StateError(f"cannot create the state folder {path}: {exc.strerror}",
                         hint="set SINDRI_HOME to a folder you can write") from None
    return path


def env_dir(name: str) -> Path:
    """Private folder of one environment: keys, host-key pin, kernel files."""
    path = home() / "envs" / name
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path
