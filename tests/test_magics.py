"""``%sindri`` and ``%%sindri`` through a real IPython shell (no kernel: text forms)."""

from __future__ import annotations

import pytest
from IPython.core.error import UsageError

from sindri_jupyter.errors import NotFoundError, SindriError
from sindri_jupyter.frontends import deploying
from sindri_jupyter.frontends.magics import RemoteCellError
from tests.conftest import ipython_shell


@pytest.fixture(scope="module")
def ip():
    shell = ipython_shell()
    shell.run_line_magic("load_ext", "sindri_jupyter")
    return shell


def test_load_ext_registers_line_and_cell_magic_with_examples_in_help(ip):
    line = ip.find_line_magic("sindri")
    cell = ip.find_cell_magic("sindri")

    assert line is not None and cell is not None
    assert "Examples::" in line.__doc__ and "%sindri deploy" in line.__doc__


def test_subcommand_help_shows_flags_and_examples(ip, capsys):
    ip.run_line_magic("sindri", "deploy --help")

    out = capsys.readouterr().out
    assert "--wait" in out and "--dry-run" in out
    assert "examples:" in out and "%sindri deploy --provider local" in out


def test_misuse_is_a_usage_error_shown_without_traceback(ip, capsys):
    with pytest.raises(UsageError, match="unrecognized arguments: --bogus"):
        ip.run_line_magic("sindri", "deploy --bogus")

    result = ip.run_cell("%sindri deploy --bogus")
    shown = capsys.readouterr()
    assert isinstance(result.error_in_exec, UsageError)
    assert "Traceback" not in shown.out + shown.err


def test_a_failed_operation_raises_a_real_exception(ip):
    with pytest.raises(NotFoundError, match="no environment named 'nosuch'"):
        ip.run_line_magic("sindri", "stop nosuch")


def test_deploy_wait_run_status_destroy(ip, capsys):
    ip.run_line_magic("sindri", "deploy --provider local --name mag --wait")
    ip.run_cell_magic("sindri", "run mag", "x = 21\nprint(x * 2)")
    ip.run_line_magic("sindri", "run mag -- 'print(x + 1)'")
    ip.run_line_magic("sindri", "status")
    ip.run_line_magic("sindri", "destroy mag --yes")

    out = capsys.readouterr().out
    assert "mag on local: ready" in out
    assert "42\n22\n" in out
    assert any(line.split()[:3] == ["mag", "local", "RUNNING"] for line in out.splitlines())
    assert "mag is destroyed and confirmed gone" in out


def test_run_waits_for_a_deploy_started_in_the_background(ip, capsys):
    ip.run_line_magic("sindri", "deploy --provider local --name bg")
    started = deploying.latest("bg")

    ip.run_cell_magic("sindri", "run bg", "print('after the deploy')")

    assert started is not None and started.future.done()
    assert "after the deploy" in capsys.readouterr().out
    ip.run_line_magic("sindri", "destroy bg --yes")


def test_remote_exception_is_raised_once_with_the_remote_traceback(ip):
    ip.run_line_magic("sindri", "deploy --provider local --name boom --wait")
    try:
        with pytest.raises(RemoteCellError) as caught:
            ip.run_cell_magic("sindri", "run boom", "1 / 0")
    finally:
        ip.run_line_magic("sindri", "destroy boom --yes")

    assert "ZeroDivisionError" in str(caught.value)
    assert any("ZeroDivisionError" in line for line in caught.value._render_traceback_())


def test_destroy_without_yes_in_a_notebook_is_a_usage_error(ip):
    ip.run_line_magic("sindri", "deploy --provider local --name keep --wait")
    try:
        with pytest.raises(UsageError, match="without confirmation"):
            ip.run_line_magic("sindri", "destroy keep")
    finally:
        ip.run_line_magic("sindri", "destroy keep --yes")


def test_cell_magic_other_than_run_is_misuse(ip):
    with pytest.raises(UsageError, match="%%sindri run NAME"):
        ip.run_cell_magic("sindri", "status", "print(1)")


def test_workshop_misuse_and_help(ip, capsys, tmp_path):
    with pytest.raises(UsageError, match="without --yes"):
        ip.run_line_magic("sindri", "workshop destroy")
    with pytest.raises(UsageError, match="does not exist"):
        ip.run_line_magic("sindri", f"workshop deploy {tmp_path}/no.csv -f base.yaml")
    with pytest.raises(UsageError, match="the following arguments are required"):
        ip.run_line_magic("sindri", "workshop deploy roster.csv")
    ip.run_line_magic("sindri", "workshop deploy --help")

    assert "--expiry-hours" in capsys.readouterr().out


def test_workshop_status_of_nothing_is_not_found(ip):
    with pytest.raises(SindriError, match="no workshop named 'workshop'"):
        ip.run_line_magic("sindri", "workshop status")


def test_unload_removes_the_magic(ip):
    from sindri_jupyter.frontends.magics import register, unregister

    unregister(ip)
    gone = ip.find_line_magic("sindri")
    register(ip)

    assert gone is None and ip.find_line_magic("sindri") is not None
