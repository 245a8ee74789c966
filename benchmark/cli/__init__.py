"""The ``bench`` command line: run, eval, table, query, ls, index, search, serve.

Each command parses its options and calls one library function (:mod:`benchmark.pipeline.runner`,
:mod:`benchmark.evaluation.evaluate`, :mod:`benchmark.reporting.leaderboard`,
:mod:`benchmark.evaluation.query`). User errors (``ogor.errors.ToreidError``, which
``models.ModelError`` subclasses) print one line and exit 2.
"""

from __future__ import annotations

import click

from toreid.cli import LazyGroup, debug_option

#: command name -> "module:attribute" of its click command (imported when used).
COMMANDS: dict[str, str] = {
    "eval": "benchmark.cli.evaluate:eval_cmd",
    "export": "benchmark.cli.released:export_cmd",
    "import": "benchmark.cli.released:import_cmd",
    "index": "benchmark.cli.search:index_cmd",
    "ls": "benchmark.cli.run:ls_cmd",
    "query": "benchmark.cli.evaluate:query_cmd",
    "report": "benchmark.cli.report:report_cmd",
    "robustness": "benchmark.cli.evaluate:robustness_cmd",
    "run": "benchmark.cli.run:run_cmd",
    "search": "benchmark.cli.search:search_cmd",
    "serve": "benchmark.cli.search:serve_cmd",
    "table": "benchmark.cli.report:table_cmd",
}


@click.group(
    cls=LazyGroup,
    lazy_commands=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"]})
@debug_option
def main() -> None:
    """bench: train, evaluate and rank text-based (occluded) person re-id models.

    \b
    Example:
      bench run --models mgcc,irra          # the embedded synthetic demo, CPU, minutes
      bench table runs/ --format md --with-paper
    """
