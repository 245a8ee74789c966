"""The ``ogor`` command line: a thin click group whose commands live in sibling modules.

Commands are imported lazily: ``ogor --help`` and the data commands stay fast because torch is
only imported by the commands that run a model.
"""

from __future__ import annotations

from ogor import __version__
from toreid.cli import LazyGroup

#: command name -> "module:attribute" of its click command.
COMMANDS: dict[str, str] = {
    "check": "ogor.cli.dataset:check",
    "stats": "ogor.cli.dataset:stats",
    "convert": "ogor.cli.dataset:convert",
    "synth": "ogor.cli.synth:synth",
    "synth-parsing": "ogor.cli.synth:synth_parsing",
    "taxonomy": "ogor.cli.oil:taxonomy",
    "import-oil": "ogor.cli.oil:import_oil",
    "fetch-oil": "ogor.cli.oil:fetch_oil",
    "oil-sheet": "ogor.cli.oil:oil_sheet",
    "render-default-oil": "ogor.cli.oil:render_default_oil",
    "extract-oil": "ogor.cli.extract:extract_oil",
    "generate": "ogor.cli.generate:generate",
    "verify": "ogor.cli.generate:verify",
    "preview": "ogor.cli.generate:preview",
}


def _make_main() -> LazyGroup:
    import click

    from toreid.cli import debug_option

    @click.group(
        cls=LazyGroup,
        lazy_commands=COMMANDS,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    @click.version_option(__version__, prog_name="ogor")
    @debug_option
    def main() -> None:
        """OGOR: build occlusion instance libraries and Occluded-* T-ReID datasets.

        \b
        Example:
          ogor synth --out demo/cuhk --format cuhk-pedes --ids 40 --views 4 --seed 0
          ogor stats demo/cuhk
        """

    return main


main = _make_main()
