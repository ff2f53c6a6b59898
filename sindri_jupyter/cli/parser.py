"""The one argument parser, shared by the ``sindri`` CLI and the ``%sindri`` magic."""

from __future__ import annotations

import argparse

from sindri_jupyter.errors import UsageError

EXAMPLES = """examples:
  sindri deploy -f sindri.yaml            plan, show the price, create, wait
  sindri deploy --provider local --name demo
  sindri run demo -- 'print(1 + 1)'       run code on the environment's kernel
  sindri status                           every environment, $/h and cost so far
  sindri destroy demo --yes               delete it and confirm it is gone
"""


class _Parser(argparse.ArgumentParser):
    """argparse that raises UsageError instead of exiting the process."""

    def error(self, message: str):
        raise UsageError(message, hint=f"`{self.prog} --help` lists the options")

    def exit(self, status: int = 0, message: str | None = None):
        if message:
            raise UsageError(message.strip())
        raise _HelpShown()


class _HelpShown(Exception):
    """--help was printed; the caller returns 0."""


def build(prog: str = "sindri") -> argparse.ArgumentParser:
    parser = _Parser(prog=prog, description="GPU development environments from a "
                     "notebook or a terminal.", epilog=EXAMPLES,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="store_true", help="print the version")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("deploy", help="plan, show the price, create, wait until ready")
    p.add_argument("-f", "--file", default=None,
                   help="config file (default: ./sindri.yaml)")
    p.add_argument("--provider", help="override deployment.provider")
    p.add_argument("--name", help="override the environment name")
    p.add_argument("--gpu", help="override the GPU type, e.g. 'RTX 4090'")
    p.add_argument("--dry-run", action="store_true", help="show the plan and price only")
    p.add_argument("--no-wait", action="store_true", help="return once created")
    p.add_argument("--wait", action="store_true",
                   help="block until ready (the CLI always does; %%sindri returns at "
                   "once without it)")

    p = sub.add_parser("status", help="state, endpoint, $/h, uptime, accrued cost")
    p.add_argument("name", nargs="?", help="one environment (default: all recorded)")
    p.add_argument("--all", action="store_true",
                   help="also list resources the providers hold that are not recorded")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = sub.add_parser("run", help="run Python on the environment's kernel")
    p.add_argument("name", help="environment name")
    p.add_argument("code", nargs="*", default=[], metavar="-- CODE",
                   help="code after --; or --file; or standard input")
    p.add_argument("--file", dest="code_file", help="a Python file to run")

    for cmd, text in (("connect", "open an interactive shell on the environment"),
                      ("ssh-config", "write a Host entry for ssh, scp and editors"),
                      ("attach", "install a kernelspec that connects to the kernel")):
        p = sub.add_parser(cmd, help=text)
        p.add_argument("name", help="environment name")
        if cmd == "ssh-config":
            p.add_argument("--accept-new-host-key", action="store_true",
                           help="forget the pinned host key (after a rebuild)")

    p = sub.add_parser("push", help="copy a file or folder to the environment")
    p.add_argument("name", help="environment name")
    p.add_argument("path", help="local file or folder")
    p.add_argument("remote", nargs="?", help="remote path (default: working folder)")
    p = sub.add_parser("pull", help="copy a file or folder from the environment")
    p.add_argument("name", help="environment name")
    p.add_argument("remote", help="remote file or folder")
    p.add_argument("path", nargs="?", help="local path (default: current folder)")

    for cmd, text in (("stop", "pause, keeping the disk"), ("start", "resume")):
        p = sub.add_parser(cmd, help=text)
        p.add_argument("name", help="environment name")
    p = sub.add_parser("destroy", help="delete the resource and confirm it is gone")
    p.add_argument("name", help="environment name")
    p.add_argument("--yes", "-y", action="store_true", help="do not ask to confirm")

    p = sub.add_parser("gpus", help="GPU catalog: VRAM, price, availability")
    p.add_argument("--provider", help="one provider (default: all that have GPUs)")
    p.add_argument("--min-vram", type=float, default=None, metavar="GB",
                   help="only GPUs with at least this much memory, in GB")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = sub.add_parser("doctor", help="check prerequisites, credentials, orphans")
    p.add_argument("--provider", help="also check this provider")
    p.add_argument("--fix", action="store_true", help="create what is missing (SSH key)")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    _add_workshop(sub)

    p = sub.add_parser("config", help="validate a config or print its JSON schema")
    config_sub = p.add_subparsers(dest="config_command", metavar="ACTION",
                                  parser_class=_Parser, required=True)
    v = config_sub.add_parser("validate", help="check a file and show how keys are used")
    v.add_argument("path", nargs="?", default=None, help="default: sindri.yaml")
    v.add_argument("-f", "--file", dest="file", help="the same, as deploy spells it")
    config_sub.add_parser("schema", help="print the JSON schema of sindri.yaml")
    return parser


def _add_workshop(sub) -> None:
    """``workshop``: one environment per participant of a roster."""
    workshop = sub.add_parser("workshop", help="one environment per participant")
    actions = workshop.add_subparsers(dest="action", metavar="ACTION",
                                      parser_class=_Parser, required=True)
    p = actions.add_parser("deploy", help="deploy an environment per roster entry")
    p.add_argument("roster", help="CSV with a `name` column, or a YAML list")
    p.add_argument("-f", "--file", required=True, help="base sindri.yaml for everyone")
    p.add_argument("--budget", type=float, metavar="USD",
                   help="per-person cap on accrued cost, in US dollars")
    p.add_argument("--expiry-hours", type=float, metavar="H",
                   help="per-person lifetime in hours, from now")
    p.add_argument("--wait", action="store_true", help="block until all are ready")
    p = actions.add_parser("status", help="state, cost, expiry and who is idle")
    p.add_argument("--idle-minutes", type=float, default=10.0,
                   help="idle after this many minutes without execution (default 10)")
    actions.add_parser("handout", help="how each participant connects")
    p = actions.add_parser("destroy", help="destroy every participant's environment")
    p.add_argument("--yes", "-y", action="store_true", help="required: confirms it")
    for p in actions.choices.values():
        p.add_argument("--name", default="workshop",
                       help="workshop name, a prefix of every environment "
                       "(default workshop)")


def parse(argv: list[str], prog: str = "sindri") -> argparse.Namespace | None:
    """Parsed arguments, or None when help was shown."""
    tail: list[str] = []
    if argv[:1] == ["run"] and "--" in argv:
        cut = argv.index("--")
        argv, tail = argv[:cut], argv[cut + 1:]
    try:
        args = build(prog).parse_args(argv)
    except _HelpShown:
        return None
    if tail:
        args.code = list(args.code) + tail
    return args
