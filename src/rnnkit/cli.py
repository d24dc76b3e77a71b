"""``rnnkit <command>``: a thin shell over the Python API."""

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="rnnkit")
def main():
    """rnnkit: recurrent neural networks on PyTorch."""


@main.command()
def info():
    """Versions, devices, backends and the dispatch table of backend="auto"."""
    from .info import report

    click.echo(report())
