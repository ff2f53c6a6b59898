"""Cost of ``import sindri_jupyter`` and ``%load_ext sindri_jupyter``.

Each figure is measured in fresh interpreters, interleaved with a baseline in
the same run: a bare interpreter for the import, an IPython shell without the
extension for ``%load_ext``. Goals (issue 2): under 50 ms and under 10 MB extra.

    python -m bench.import_cost [--repeat N]
"""

from __future__ import annotations

import argparse

from bench.harness import interleave, median, python_probe, report

_CLOCK = "import json, resource, time; t0 = time.perf_counter()\n"
_DONE = ("print(json.dumps({'s': time.perf_counter() - t0, "
         "'rss_kb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))")

BARE = _CLOCK + _DONE
IMPORT = _CLOCK + "import sindri_jupyter\n" + _DONE

SHELL = ("from IPython.core.interactiveshell import InteractiveShell\n"
         "ip = InteractiveShell.instance()\n")
SHELL_BARE = SHELL + _CLOCK + _DONE
SHELL_EXT = SHELL + _CLOCK + "ip.run_line_magic('load_ext', 'sindri_jupyter')\n" + _DONE


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args(argv)

    bare, imported = interleave(lambda: python_probe(BARE), lambda: python_probe(IMPORT),
                                args.repeat)
    shell, loaded = interleave(lambda: python_probe(SHELL_BARE),
                               lambda: python_probe(SHELL_EXT), args.repeat)
    figures = {
        "import_ms_extra": 1000 * (median(imported, "s") - median(bare, "s")),
        "import_mb_extra": (median(imported, "rss_kb") - median(bare, "rss_kb")) / 1024,
        "load_ext_ms_extra": 1000 * (median(loaded, "s") - median(shell, "s")),
        "load_ext_mb_extra": (median(loaded, "rss_kb") - median(shell, "rss_kb")) / 1024,
        "goal_ms": 50.0,
        "goal_mb": 10.0,
        "repeat": args.repeat,
    }
    report("import_cost", figures)
    return figures


if __name__ == "__main__":
    main()
