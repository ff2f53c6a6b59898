"""``%sindri`` and ``%%sindri``: the CLI's commands inside a notebook.

The magic parses with the CLI's own parser, so every subcommand and flag is the
same. Bad arguments raise IPython's ``UsageError`` (shown without a traceback);
a failed operation raises a real exception so that notebooks under test fail.

Examples::

    %load_ext sindri_jupyter
    %sindri deploy -f sindri.yaml
    %sindri status
    %%sindri run quickstart
    import torch; print(torch.cuda.is_available())
"""

from __future__ import annotations

import queue
import shlex
import sys
from typing import Any

from IPython.core.error import UsageError as IPythonUsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand

from sindri_jupyter.errors import SindriError


class RemoteCellError(Exception):
    """The code raised on the environment's kernel.

    IPython shows ``_render_traceback_`` instead of a local traceback, so the
    failure appears once, as the remote kernel reported it.
    """

    def __init__(self, message: str, traceback: list[str]):
        super().__init__(message)
        self.remote_traceback = traceback

    def _render_traceback_(self) -> list[str]:
        return list(self.remote_traceback) or [str(self)]


@magics_class
class SindriMagics(Magics):
    @no_var_expand
    @line_cell_magic
    def sindri(self, line: str, cell: str | None = None) -> Any:
        """Drive sindri environments from the notebook.

        %sindri deploy [-f FILE] [--provider P] [--name N] [--gpu G] [--dry-run]
        %sindri status [NAME] [--all] [--json]
        %sindri run NAME -- CODE        %%sindri run NAME  (the cell is the code)
        %sindri stop|start|destroy NAME
        %sindri push NAME PATH [REMOTE] / %sindri pull NAME REMOTE [PATH]
        %sindri attach NAME             (a kernelspec for JupyterLab)
        %sindri gpus | doctor | config validate FILE

        Every subcommand takes --help, e.g. ``%sindri deploy --help``.
        """
        from sindri_jupyter.cli import parser

        try:
            argv = shlex.split(line)
        except ValueError as exc:
            raise IPythonUsageError(f"cannot split the arguments: {exc}") from None
        if cell is not None:
            if argv[:1] != ["run"] or len(argv) != 2:
                raise IPythonUsageError("as a cell magic: %%sindri run NAME")
            return run_cell(argv[1], cell)
        try:
            args = parser.parse(argv, prog="%sindri")
            if args is None:
                return None
            return self._dispatch(args)
        except SindriError as exc:
            if exc.exit_code == 2:
                raise IPythonUsageError(str(exc)) from None
            raise

    def _dispatch(self, args) -> Any:
        from sindri_jupyter.cli import dispatch
        from sindri_jupyter.cli.render import Out

        if args.command == "run":
            from sindri_jupyter.cli.commands import _code_of

            return run_cell(args.name, _code_of(args))
        status = dispatch(args, Out(sys.stdout, sys.stderr, interactive=False))
        if status == 1 and args.command == "doctor":
            raise SindriError("sindri doctor found problems; see the lines marked FAIL")
        return None


def run_cell(name: str, code: str) -> None:
    """Run ``code`` on the environment's kernel, relaying outputs into this cell.

    The relay hook runs on the loop thread; outputs are queued and published
    from this (the cell's) thread, so they land in this cell and in order.
    """
    from sindri_jupyter.cli.commands import _execute
    from sindri_jupyter.core import sync

    outputs: queue.Queue = queue.Queue()
    future = sync.submit(_execute(name, code, lambda k, c: outputs.put((k, c))))
    interrupted = False
    while True:
        try:
            _publish(*outputs.get(timeout=0.05))
            continue
        except queue.Empty:
            if future.done():
                break
        except KeyboardInterrupt:
            interrupted = True
            future.cancel()
    result = None if future.cancelled() else future.result()
    if interrupted or (result is not None and result.interrupted):
        print(f"[sindri] interrupted: the kernel of {name} stopped the cell; "
              "its variables are kept", file=sys.stderr)
        raise KeyboardInterrupt
    if result is not None and not result.ok:
        raise RemoteCellError(f"{result.ename}: {result.evalue} (on {name})",
                              result.traceback)


def _publish(kind: str, content: dict[str, Any]) -> None:
    from IPython.display import clear_output, publish_display_data

    if kind == "stream":
        target = sys.stderr if content.get("name") == "stderr" else sys.stdout
        target.write(content.get("text", ""))
        target.flush()
    elif kind in ("display_data", "execute_result", "update_display_data"):
        publish_display_data(content.get("data", {}), content.get("metadata", {}))
    elif kind == "clear_output":
        clear_output(wait=bool(content.get("wait")))
    # "error" is raised as RemoteCellError once the cell ends: shown once.


def register(ipython) -> None:
    ipython.register_magics(SindriMagics)
