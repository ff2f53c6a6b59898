"""The ``sindri`` command line: parse, dispatch, print errors once, exit 0/1/2."""

from __future__ import annotations

import logging
import os
import sys

from sindri_jupyter.errors import SindriError


def main(argv: list[str] | None = None) -> int:
    from sindri_jupyter.cli import parser
    from sindri_jupyter.cli.render import Out

    out = Out()
    level = os.environ.get("SINDRI_LOG_LEVEL", "WARNING").upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        out.error(f"error: SINDRI_LOG_LEVEL={level!r} is not a level\n"
                  "  hint: use DEBUG, INFO, WARNING or ERROR")
        return 2
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        args = parser.parse(sys.argv[1:] if argv is None else argv)
        if args is None:
            return 0
        return dispatch(args, out)
    except SindriError as exc:
        out.error(f"error: {exc}")
        return exc.exit_code
    except KeyboardInterrupt:
        out.error("interrupted; `sindri status` shows what is recorded")
        return 1
    finally:
        _close_sessions()


def _close_sessions() -> None:
    """Close kernel sessions the command opened (only if it opened any)."""
    if "sindri_jupyter.remote.sessions" in sys.modules:
        from sindri_jupyter.core import sync
        from sindri_jupyter.remote import sessions

        sync.run(sessions.close_all())


def dispatch(args, out) -> int:
    from sindri_jupyter import __version__
    from sindri_jupyter.cli import parser
    from sindri_jupyter.cli.commands import HANDLERS

    if args.version:
        out.print(f"sindri-jupyter {__version__}")
        return 0
    if not args.command:
        out.print(parser.build().format_help())
        return 2
    return HANDLERS[args.command](args, out)
