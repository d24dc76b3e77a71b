"""Every setting of every command that trains, given values out of its range, is refused at
once: before any data is read, with a one-line error that names the option, and with nothing
written where the run was to go (issue 29, the fuzz suite's second part: the settings table).

The out-of-range values are made from each setting's declaration (``rnnkit.tasks.settings``:
its type, minimum, maximum, interval, choices or rule), so a setting or task declared
tomorrow is covered by the same tests; a rule the tests do not know yet fails until its bad
values are written here. Beside them, hypothesis gives each option arbitrary text: it is
read or refused, never a traceback.
"""

import math

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnkit import cli

FUZZ = settings(max_examples=12, derandomize=True, deadline=None, database=None)

# Values each rule refuses: a rule says in code what the declaration's fields cannot.
RULE_REFUSES = {
    "positive_integer": [0, -3, 2.5],
    "finite": [math.nan, math.inf, -math.inf],
    "probability": [-0.1, 1.5, math.nan],
    "folder": [""],
    "existing_file": ["", "no-such-file.safetensors"],
    "level": [0, 1, 1.5, math.nan],
    "ngram_orders": [-1, 4, 1.5],
}
# Values a parsed setting refuses, as command-line text.
PARSE_REFUSES = {"integers": ["x", "0", "-5", "3,x"], "names": ["no-such-cell", ""]}
INTERVAL_REFUSES = {"[0, 1)": [1], "(0, 1)": [0, 1], "[0, 1]": [], "(0, 1]": [0]}


def out_of_range(setting, fractional: bool = False) -> list:
    """Values ``setting`` must refuse, as Python values (text for the command line is
    ``str`` of each), from what its declaration says it may be."""
    if setting.choices is not None:
        return ["no-such-choice", ""]
    if setting.rule is not None:
        return RULE_REFUSES[setting.rule.__name__]  # a new rule: add its bad values above
    if setting.type in (int, float):
        if setting.fraction:
            return [-0.5, 1.5, math.nan, math.inf, "x", *INTERVAL_REFUSES[setting.fraction]]
        if setting.type is int and not fractional:
            above = [setting.maximum + 1] if setting.maximum is not None else []
            return [setting.minimum - 1, setting.minimum - 7, 2.5, "x", *above]
        below = [-1] if setting.minimum == 0 else [0, -1]
        return [*below, math.nan, math.inf, "x"]
    return []  # text, columns, flags: nothing is out of range until the data is read


def command_line_refusals(setting, fractional: bool) -> list[str]:
    """What the command line must refuse for ``setting``: its out-of-range values as text,
    and text its parsing refuses."""
    if setting.type is dict:
        unknown = ["no_such_layer_option=1"] if setting.name == "rnn_options" else []
        return ["no-equals-sign", "=1", *unknown]
    if setting.type is tuple:
        return ["x", "3,x"]
    if setting.parse is not None:
        return PARSE_REFUSES[setting.parse.__name__]
    return [str(value) for value in out_of_range(setting, fractional)]


CASES = [
    pytest.param(command, name, flag, text, id=f"{command}{flag}={text}")
    for command, (cls, flags) in cli.TRAIN_COMMANDS.items()
    for name, flag in flags.items()
    for text in command_line_refusals(cls.declarations()[name], name in cls.fractional)
]
# The options that take a value, of the commands that read data (the memory benchmark makes
# its own: text it accepts would start a run, so it has only the declared values above).
OPTIONS = [
    pytest.param(command, name, flag, id=f"{command}{flag}")
    for command, (cls, flags) in cli.TRAIN_COMMANDS.items()
    if command != "bench-memory"
    for name, flag in flags.items()
    if cls.declarations()[name].type is not bool
]


def _train(tmp_path, command: str, *args: str):
    """``rnnkit COMMAND ... ARGS`` on data that does not exist: a setting is checked first,
    so a bad one is named; one that passes meets the missing file."""
    data = tmp_path / "missing-data.csv"
    where = ["--data", str(data)] if command != "bench-memory" else []
    result = CliRunner().invoke(
        cli.main, [*command.split(), *where, "--out", str(tmp_path / "run"), *args]
    )
    assert isinstance(result.exception, SystemExit) and result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    assert [path.name for path in tmp_path.iterdir()] == [], "something was written"
    return result.output


def test_every_command_that_trains_is_covered():
    expected = {"forecast train", "classify train", "tag train", "lm train", "translate train"}
    assert expected | {"transcribe train", "music train", "bench-memory"} <= set(cli.TRAIN_COMMANDS)
    assert len(CASES) > 500


@pytest.mark.parametrize(("command", "name", "flag", "text"), CASES)
def test_a_value_out_of_range_is_refused_naming_the_option(tmp_path, command, name, flag, text):
    output = _train(tmp_path, command, flag, text)
    assert f"'{flag}'" in output or output.startswith(f"Error: {flag} "), output
    assert "missing-data.csv" not in output  # refused before the data is read


@pytest.mark.parametrize(
    ("command", "name", "value"),
    [
        pytest.param(command, name, value, id=f"{command}:{name}={value!r}")
        for command, (cls, flags) in cli.TRAIN_COMMANDS.items()
        for name in flags
        for value in [*out_of_range(cls.declarations()[name], name in cls.fractional), True]
        if cls.declarations()[name].type in (int, float) or value is not True
    ],
)
def test_the_python_api_refuses_the_same_values_naming_the_setting(command, name, value):
    cls = cli.TRAIN_COMMANDS[command][0]
    with pytest.raises(ValueError, match=f"^{name}="):
        cls(**{name: value}).check_settings()


@pytest.mark.parametrize(("command", "name", "flag"), OPTIONS)
@FUZZ
@given(
    text=st.one_of(
        st.text(max_size=8),
        st.sampled_from(["1e400", "-0", "0x10", "1_000", " 3 ", "٣", "NaN", "none", "2,", "a=b=c"]),
        st.integers(-(2**70), 2**70).map(str),
        st.floats().map(str),
    )
)
def test_any_text_is_read_or_refused_in_one_line(tmp_path_factory, command, name, flag, text):
    output = _train(tmp_path_factory.mktemp("run"), command, flag, text)
    assert output.startswith("Error:") or "Usage:" in output, output
    # Refused, naming the option (or the setting, where two settings clash), or read, and the
    # missing data named.
    assert flag in output or name in output or "missing-data.csv" in output, output


@pytest.mark.parametrize(
    ("flag", "size", "says"),
    [
        ("--hidden-size", 10**13, "GiB asked for at once"),
        ("--embedding-dim", 10**13, "GiB asked for at once"),
        ("--ngram-buckets", 10**14, "GiB asked for at once"),
        ("--hidden-size", 10**30, "larger than any tensor can hold"),
    ],
)
def test_a_model_too_large_for_memory_is_refused_in_one_line(tmp_path, flag, size, says):
    data = tmp_path / "reviews.csv"
    data.write_text("text,label\ngood film,pos\nbad film,neg\nfine,pos\nawful,neg\n")
    out = tmp_path / "run"
    command = ["classify", "train", "--data", str(data), "--out", str(out), "--val", "0"]
    result = CliRunner().invoke(cli.main, [*command, flag, str(size)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "Error: out of memory: " in result.output and says in result.output, result.output
    assert sorted(path.name for path in tmp_path.iterdir()) == ["reviews.csv"]
