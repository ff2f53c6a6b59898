"""sindri-jupyter: GPU development environments from inside a notebook.

Importing this package stays light: the providers, httpx, pydantic, asyncssh and
ipywidgets load only when a command uses them.
"""

__version__ = "0.1.0"


def load_ipython_extension(ipython):
    """``%load_ext sindri_jupyter``: register ``%sindri`` and ``%%sindri``."""
    from sindri_jupyter.frontends.magics import register

    register(ipython)


def unload_ipython_extension(ipython):
    """``%unload_ext`` / ``%reload_ext``: remove the magics, stop panel refreshes."""
    from sindri_jupyter.frontends.magics import unregister

    unregister(ipython)


def _jupyter_server_extension_points():
    return []


def _jupyter_labextension_paths():
    return []
