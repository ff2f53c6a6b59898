"""``%sindri`` and ``%%sindri``: the CLI's commands inside a notebook.

The magic parses with the CLI's own parser, so every subcommand and flag is the
same. Bad arguments raise IPython's ``UsageError`` (shown without a traceback);
a failed operation raises a real exception so that notebooks under test fail.
Four subcommands have notebook forms: ``deploy`` returns at once with a live
progress panel, ``status`` is a panel with buttons, ``gpus`` is a picker, and
``workshop`` (notebook only for now) runs one environment per participant.

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

from sindri_jupyter.errors import ConfigError, SindriError, UsageError

NOTEBOOK_HELP = """\
notebook forms:
  %sindri deploy ...         returns at once; a live panel shows phases, ETA, $/h
  %sindri deploy ... --wait  blocks the cell until the environment is ready
  %sindri status             panel with stop / start / destroy / attach buttons
  %sindri gpus               filterable GPU table; a chosen row gives a deploy line
  %sindri workshop deploy ROSTER -f BASE.yaml [--budget USD] [--expiry-hours H]
  %sindri workshop status | handout | destroy --yes
  %%sindri run NAME          run the cell on the environment's kernel
"""


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
                       [--no-wait] [--wait]
        %sindri status [NAME] [--all] [--json]
        %sindri run NAME -- CODE        %%sindri run NAME  (the cell is the code)
        %sindri stop|start|destroy NAME [--yes]
        %sindri push NAME PATH [REMOTE] / %sindri pull NAME REMOTE [PATH]
        %sindri attach NAME             (a kernelspec for JupyterLab)
        %sindri gpus [--provider P] [--min-vram GB] | doctor | config validate FILE
        %sindri workshop deploy|status|handout|destroy ...

        ``deploy`` returns at once and a panel follows it (``--wait`` blocks);
        ``status`` and ``gpus`` are panels; ``--json`` gives the CLI's output.
        Every subcommand takes --help, e.g. ``%sindri deploy --help``.

        Examples::

            %sindri deploy --provider local --name demo --wait
            %%sindri run demo
            x = 21; print(x * 2)

            %sindri deploy -f sindri.yaml --gpu "RTX 4090"   # returns at once
            %sindri status
            %sindri gpus --min-vram 24
            %sindri workshop deploy roster.csv -f base.yaml --budget 5 --expiry-hours 3
            %sindri destroy demo --yes
        """
        argv = _split(line)
        if cell is not None:
            if argv[:1] != ["run"] or len(argv) != 2:
                raise IPythonUsageError("as a cell magic: %%sindri run NAME")
            return run_cell(argv[1], cell)
        try:
            return self._dispatch(argv)
        except (UsageError, ConfigError) as exc:
            raise IPythonUsageError(str(exc)) from None  # misuse: no traceback

    def _dispatch(self, argv: list[str]) -> Any:
        from sindri_jupyter.cli import dispatch, parser
        from sindri_jupyter.cli.render import Out

        if not argv:
            print(parser.build("%sindri").format_help() + "\n" + NOTEBOOK_HELP)
            return None
        args = parser.parse(argv, prog="%sindri")
        if args is None:
            print("\n" + (NOTEBOOK_HELP if argv[0] in ("-h", "--help")
                          else _examples(argv[0])))
            return None
        special = _NOTEBOOK_FORMS.get(args.command)
        if special is not None and not getattr(args, "json", False):
            return special(args)
        if args.command == "workshop":
            from sindri_jupyter.frontends import workshop_cmd

            return workshop_cmd.ACTIONS[args.action](args)
        if args.command == "run":
            from sindri_jupyter.cli.commands import code_of

            if not args.code and not args.code_file:
                raise IPythonUsageError(f"no code: %sindri run {args.name} -- CODE, "
                                        f"or a cell starting with %%sindri run {args.name}")

            return run_cell(args.name, code_of(args))
        status = dispatch(args, Out(sys.stdout, sys.stderr, interactive=False))
        if status == 1 and args.command == "doctor":
            raise SindriError("sindri doctor found problems; see the lines marked FAIL")
        return None


EXAMPLES = {
    "deploy": ["%sindri deploy --provider local --name demo        # returns at once",
               "%sindri deploy -f sindri.yaml --gpu 'RTX 4090' --wait",
               "%sindri deploy -f sindri.yaml --dry-run            # plan and $/h only"],
    "status": ["%sindri status              # panel with buttons, refreshes itself",
               "%sindri status demo --json  # the CLI's JSON"],
    "run": ["%sindri run demo -- 'print(1 + 1)'",
            "%%sindri run demo            # as a cell magic: the cell is the code"],
    "gpus": ["%sindri gpus --provider runpod --min-vram 24"],
    "destroy": ["%sindri destroy demo --yes"],
    "stop": ["%sindri stop demo           # keeps the disk; %sindri start demo resumes"],
    "start": ["%sindri start demo"],
    "push": ["%sindri push demo data/ /workspace/data"],
    "pull": ["%sindri pull demo /workspace/out.csv ."],
    "attach": ["%sindri attach demo         # then pick the kernel in JupyterLab"],
}


def _examples(command: str) -> str:
    lines = EXAMPLES.get(command)
    if not lines:
        return NOTEBOOK_HELP
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


def _split(line: str) -> list[str]:
    try:
        return shlex.split(line)
    except ValueError as exc:
        raise IPythonUsageError(f"cannot split the arguments: {exc}") from None


def _deploy(args) -> None:
    from sindri_jupyter.cli import dispatch
    from sindri_jupyter.cli.commands import resolve_config
    from sindri_jupyter.cli.render import Out
    from sindri_jupyter.frontends import deploying

    if args.dry_run:
        dispatch(args, Out(sys.stdout, sys.stderr, interactive=False))
        return
    config, path = resolve_config(args)
    deployment = deploying.start(config, path, wait_ready=not args.no_wait)
    if args.wait:
        deployment.wait()
    return


def _status(args) -> Any:
    from sindri_jupyter.frontends.status_panel import show_status

    return show_status(args.name, include_unrecorded=args.all)


def _gpus(args) -> Any:
    from sindri_jupyter.frontends.gpu_picker import show_picker

    return show_picker(args.provider, args.min_vram)


_NOTEBOOK_FORMS = {"deploy": _deploy, "status": _status, "gpus": _gpus}


def run_cell(name: str, code: str) -> None:
    """Run ``code`` on the environment's kernel, relaying outputs into this cell.

    A deploy of ``name`` still under way in this kernel is waited for first.
    The relay hook runs on the loop thread; outputs are queued and published
    from this (the cell's) thread, so they land in this cell and in order.
    """
    from sindri_jupyter.cli.commands import execute_code
    from sindri_jupyter.core import sync
    from sindri_jupyter.frontends import deploying

    started = deploying.pending(name)
    if started is not None:
        print(f"[sindri] waiting for the deploy of {name} started in this notebook",
              file=sys.stderr)
        started.wait()
    outputs: queue.Queue = queue.Queue()
    future = sync.submit(execute_code(name, code, lambda k, c: outputs.put((k, c))))
    future.add_done_callback(lambda _f: outputs.put(_DONE))
    interrupted = _drain(outputs, future)
    result = None if future.cancelled() else future.result()
    if interrupted or (result is not None and result.interrupted):
        print(f"[sindri] interrupted: the kernel of {name} stopped the cell; "
              "its variables are kept", file=sys.stderr)
        raise KeyboardInterrupt
    if result is not None and not result.ok:
        raise RemoteCellError(f"{result.ename}: {result.evalue} (on {name})",
                              result.traceback)


_DONE = ("done", {})


def _drain(outputs: queue.Queue, future) -> bool:
    """Publish queued outputs until the execution ends; True if interrupted.

    The future's done-callback queues ``_DONE`` after the last output, so the
    loop ends at once; the timeout only keeps Ctrl-C responsive.
    """
    interrupted = False
    while True:
        try:
            item = outputs.get(timeout=0.5)
        except queue.Empty:
            continue
        except KeyboardInterrupt:
            interrupted = True
            future.cancel()
            continue
        if item is _DONE:
            return interrupted
        _publish(*item)


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


def unregister(ipython) -> None:
    """Undo ``register`` (``%unload_ext`` / ``%reload_ext``); stop panel refreshes."""
    from sindri_jupyter.frontends import status_panel

    status_panel.stop_all()
    for kind in ("line", "cell"):
        ipython.magics_manager.magics[kind].pop("sindri", None)
