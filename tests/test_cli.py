import subprocess
import sys

from click.testing import CliRunner

from rnnkit.cli import main
from rnnkit.info import dispatch_table


def test_info_prints_versions_backends_and_dispatch_table():
    result = CliRunner().invoke(main, ["info"])
    assert result.exit_code == 0, result.output
    for expected in (
        "rnnkit: 0.1.0",
        "torch: ",
        "reference  available",
        "vendor     available",
        "fused      available on the CPU",
    ):
        assert expected in result.output
    assert "| LSTM(peephole=True) | fused | fused | peephole connections" in result.output
    assert "| LSTM | fused | vendor |" in result.output


def test_dispatch_table_asks_the_layers():
    rows = {row["layer"]: row for row in dispatch_table()}
    assert rows["LSTM(recurrent_dropout=0.1)"]["train"] == "fused"
    assert rows["LSTM(recurrent_dropout=0.1)"]["eval"] == "vendor"
    assert rows["Recurrent(YourCell())"]["train"] == "reference"
    assert rows["Recurrent(YourCell())"]["why"].startswith("YourCell is not one of torch's RNN")


def test_console_script_and_module_entry_points():
    for command in (["rnnkit", "info"], [sys.executable, "-m", "rnnkit", "info"]):
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        assert 'dispatch of backend="auto"' in done.stdout
