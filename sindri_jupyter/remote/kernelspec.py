"""``sindri attach NAME``: a kernelspec whose provisioner is ``SindriProvisioner``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from sindri_jupyter.core import paths


def spec_name(name: str) -> str:
    return f"sindri-{name}".lower()


def display_name(name: str) -> str:
    from sindri_jupyter.core.state import Store

    record = Store.default().get(name)
    gpu = record.handle_data.get("gpu") or record.handle_data.get("gpu_type_id")
    return f"Sindri: {name} ({gpu or record.provider})"


def install(name: str) -> Path:
    """Write the kernelspec into the user's Jupyter data dir; return its folder."""
    from jupyter_core.paths import jupyter_data_dir

    folder = Path(jupyter_data_dir()) / "kernels" / spec_name(name)
    folder.mkdir(parents=True, exist_ok=True)
    spec = {
        # Never run: the provisioner connects instead of launching argv.
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": display_name(name),
        "language": "python",
        "interrupt_mode": "message",
        "metadata": {"kernel_provisioner": {
            "provisioner_name": "sindri-provisioner",
            "config": {"environment": name, "sindri_home": str(paths.home())},
        }},
    }
    (folder / "kernel.json").write_text(json.dumps(spec, indent=2))
    return folder


def remove(name: str) -> None:
    from jupyter_core.paths import jupyter_data_dir

    folder = Path(jupyter_data_dir()) / "kernels" / spec_name(name)
    if folder.exists():
        for child in folder.iterdir():
            child.unlink()
        folder.rmdir()
