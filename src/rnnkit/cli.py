"""``rnnkit <command>``: a thin shell over the Python API.

Every ``<task> train`` command is made the same way: how to read the data, then one option
per setting of the task's estimator, its own and the training settings it takes, made from
their declarations (``rnnkit.tasks.settings``) with their help and the estimator's defaults;
the run goes through ``rnnkit.tasks.rundir.train_run``. ``register`` makes a new task's
``train``, ``evaluate`` and ``predict`` in one line. Under torchrun only rank 0 prints.
"""

import json
import re
from pathlib import Path

import click

from .tasks.caption import Captioner
from .tasks.classify import Classifier
from .tasks.forecast import Forecaster
from .tasks.lm import LanguageModeler
from .tasks.memory import MemoryBenchmark
from .tasks.music import Composer
from .tasks.options import parse_assignments, parse_value
from .tasks.tag import Tagger
from .tasks.transcribe import Transcriber
from .tasks.translate import Translator
from .training.reproducibility import MAX_SEED


class _Main(click.Group):
    """Bad input ends in one line that says what is wrong, not a traceback; so do sizes
    that ask for more memory than there is."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (ValueError, FileNotFoundError, FileExistsError) as error:
            raise click.ClickException(str(error)) from error
        except (RuntimeError, MemoryError, TypeError) as error:
            reason = _out_of_memory(error)
            if reason is None:
                raise
            raise click.ClickException(
                f"out of memory: {reason}; smaller sizes (--hidden-size, --embedding-dim, "
                "--num-layers, --batch-size) ask for less"
            ) from error


# How PyTorch and NumPy say that an allocation failed: too little memory (the message
# says how much was asked for), or a size beyond what a tensor can index.
_NO_MEMORY = ("can't allocate memory", "out of memory", "Unable to allocate")
_TOO_LARGE = ("Storage size calculation overflowed", "Overflow when unpacking long")


def _out_of_memory(error: BaseException) -> str | None:
    """What ``error`` says if it is an allocation that failed, in a line; else None."""
    text = str(error).strip()
    if any(words in text for words in _TOO_LARGE):
        return "a size larger than any tensor can hold"
    asked = re.search(r"allocate (\d+) bytes", text)
    if asked:
        return f"{int(asked.group(1)) / 2**30:,.0f} GiB asked for at once"
    if isinstance(error, MemoryError) or any(words in text for words in _NO_MEMORY):
        return text.splitlines()[0] if text else "MemoryError"
    return None


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="rnnkit")
def main():
    """rnnkit: recurrent neural networks on PyTorch."""


@main.command()
def info():
    """Versions, devices, backends and the dispatch table of backend="auto"."""
    from .info import report

    click.echo(report())


# --- how options are made ------------------------------------------------------------------------


class _Integers(click.ParamType):
    """Integers separated by commas, as a tuple; "none" for no entries ([])."""

    name = "N,N,…|none"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        if str(value).strip().lower() == "none":
            return []  # not (): an option not given reads as () and keeps the default
        try:
            return tuple(int(part) for part in str(value).split(",") if part.strip())
        except ValueError:
            self.fail(f"{value!r} is not integers separated by commas, or 'none'", param, ctx)


_NONE = object()  # "none" on the command line: the setting is None (no clipping, no patience)


class _OrNone(click.ParamType):
    """A number, one of ``words``, or "none" for a setting that may be switched off."""

    def __init__(self, kind: type, *words: str):
        self.kind, self.words = kind, words
        self.name = "|".join((kind.__name__, *words, "none"))

    def convert(self, value, param, ctx):
        if value is _NONE or isinstance(value, self.kind):
            return value
        word = str(value).strip().lower()
        if word == "none":
            return _NONE
        if word in self.words:
            return word
        try:
            return self.kind(value)
        except ValueError:
            kinds = ["an integer" if self.kind is int else "a number", *map(repr, self.words)]
            self.fail(f"{value!r} is not {', '.join(kinds)} or 'none'", param, ctx)


class _Parsed(click.ParamType):
    """Text read by a setting's own ``parse`` ("100,200" -> [100, 200])."""

    name = "text"

    def __init__(self, parse):
        self.parse = parse

    def convert(self, value, param, ctx):
        if not isinstance(value, str):
            return value
        try:
            return self.parse(value)
        except ValueError as error:
            self.fail(str(error), param, ctx)


def _shown(value) -> str:
    if value is None or (isinstance(value, tuple | list) and not value):
        return "none"
    if isinstance(value, tuple | list):
        return ",".join(map(str, value))
    return str(value)


def _kind(setting) -> dict:
    """The click arguments that read ``setting`` (a ``rnnkit.tasks.settings.Setting``)."""
    if setting.parse is not None and setting.type is not dict:
        return {"type": _Parsed(setting.parse)}
    if setting.choices:
        return {"type": click.Choice(setting.choices)}
    if setting.type in (list, dict):  # repeatable: a column each, or KEY=VALUE each
        return {"multiple": True}
    if setting.type is tuple:
        return {"type": _Integers()}
    if setting.type is bool:
        return {}
    if setting.optional or setting.words:  # a setting that may be off also takes "none"
        return {"type": _OrNone(setting.type, *setting.words)}
    return {"type": setting.type}


def _options(cls, reserved) -> tuple[list, dict]:
    """(an option per setting of estimator ``cls`` that has one, in the order of its
    signature; ``{parameter: setting name}``), from the settings' declarations: each
    option's help ends with the estimator's default, and its value defaults to None, which
    leaves the setting to the estimator. A setting named like a parameter of the command
    in ``reserved`` (``test``: the test data) takes the parameter ``<name>_setting``."""
    options, names = [], {}
    for name, setting in cls.declarations().items():
        if not setting.cli:
            continue
        dash = name.replace("_", "-")
        flags = setting.flags or (
            (f"{_flag(setting)}/--no-{dash}",) if setting.type is bool else (_flag(setting),)
        )
        # A task with a budget rule sets these from its data unless they are given.
        ruled = name in cls.automatic or (name in ("epochs", "steps") and cls.automatic)
        shown = "by the budget rule, see the run's report" if ruled else _shown(setting.default)
        parameter = f"{name}_setting" if name in reserved else name
        names[parameter] = name
        options.append(
            click.option(
                *flags,
                parameter,
                default=None,
                help=f"{setting.help} [default: {setting.shown or shown}]",
                **_kind(setting),
            )
        )
    return options, names


def _flag(setting) -> str:
    """The option that sets ``setting`` on the command line, as errors name it."""
    if setting.flags:
        return setting.flags[0].split("/")[0]  # "--lowercase/--no-lowercase": the first
    return f"--{setting.name.replace('_', '-')}"


def _with_options(function, options: list):
    """``function`` decorated with ``options``, in the order listed (as ``--help`` shows)."""
    for option in reversed(options):
        function = option(function)
    return function


def _settings(cls, given: dict, names: dict) -> dict:
    """The settings the user gave, by name (others keep the estimator's defaults): "none"
    read as None, repeated ``KEY=VALUE`` as a dict, repeated values as a list."""
    declared = cls.declarations()
    settings = {}
    for parameter, value in given.items():
        if value is None or value == ():
            continue
        setting = declared[names[parameter]]
        if value is _NONE:
            value = None
        elif setting.type is dict:
            value = parse_assignments(value, _flag(setting), parse=setting.parse or parse_value)
        elif setting.type is list and not setting.parse:
            value = list(value)
        settings[setting.name] = value
    return settings


_SEED = click.IntRange(0, MAX_SEED)  # the seeds NumPy and torch both take


def _echo(text: str) -> None:
    """Print ``text``, on the main process only under torchrun."""
    from .training.distributed import process_rank

    if text and process_rank() == 0:
        click.echo(text)


def _train_command(
    group,
    cls,
    summary: str,
    options=(),
    *,
    data_help=None,
    test_help=None,
    read=(),
    build=None,
    name="train",
    data_type=None,
    made=None,
):
    """``<group> train``: ``--data`` (unless ``data_help`` is None: the task makes its own),
    ``--test`` (with ``test_help``), ``options`` (besides the settings: how to read the
    data), an option per setting of ``cls`` (from its declarations), then
    ``rundir.train_run``. ``read``: the options that say how to read the data;
    ``build(settings, extra) -> estimator`` where ``options`` change settings (default
    ``cls(**settings)``); ``data_type``: the click type of ``--data``; ``made(extra, out)
    -> data or None``: data the command makes from its ``options`` (a generated set), for
    which ``--data`` may be left out."""
    given = click.option("--data", required=made is None, help=data_help, type=data_type)
    common = [given] if data_help else []
    if test_help:
        common.append(click.option("--test", help=test_help))
    placement = [
        click.option("--out", required=True, help="Run directory to write."),
        click.option("--overwrite", is_flag=True, help="Replace an existing run directory."),
        click.option("--resume", is_flag=True, help="Continue an interrupted run."),
    ]
    reserved = {"data", "test", "out", "overwrite", "resume", *read}
    settings_options, names = _options(cls, reserved)
    flags = {name: _flag(cls.declarations()[name]) for name in names.values()}

    def train(out, overwrite, resume, data=None, test=None, **given):
        from .tasks.rundir import train_run

        reading = {key: given.pop(key) for key in read}
        extra = {key: given.pop(key) for key in list(given) if key not in names}
        settings = _settings(cls, given, names)
        estimator = build(settings, extra) if build else cls(**settings)
        _check_given(estimator, settings, flags)
        if made is not None:
            generated = made(extra, out)
            if (generated is None) == (data is None):
                raise click.UsageError("give --data or the options that make the data, not both")
            data = data if generated is None else generated
        _echo(
            train_run(
                estimator, data, out, test=test, read=reading, overwrite=overwrite, resume=resume
            )
        )

    train.__doc__ = summary
    everything = [*common, *options, *settings_options, *placement]
    command = group.command(name)(_with_options(train, everything))
    TRAIN_COMMANDS[f"{group.name} {name}" if group is not main else name] = (cls, flags)
    return command


# Every command that trains an estimator: its estimator class and the option of each setting
# it has one for ({setting name: "--flag"}); the fuzz suite checks every one of them.
TRAIN_COMMANDS: dict[str, tuple[type, dict[str, str]]] = {}


def _check_given(estimator, settings: dict, flags: dict) -> None:
    """``estimator.check_settings()``, its error naming the option of the setting it is
    about ("Invalid value for '--test-fraction': test=0 must be …"): an option and its
    setting may be spelled differently."""
    try:
        estimator.check_settings()
    except ValueError as error:
        about = [
            flags[name]
            for name in settings
            if name in flags and str(error).startswith((f"{name}=", f"{flags[name][2:]}="))
        ]
        if not about:
            raise
        raise click.BadParameter(str(error), param_hint=f"'{about[0]}'") from None


def register(
    cls, *, data_help="Training data.", test_help="Test data in its form, scored after training."
) -> click.Group:
    """``rnnkit <task> train|evaluate|predict`` for the estimator class ``cls``: the one line
    a new task adds to the command line. ``train`` takes an option per setting (from their
    declarations), ``evaluate`` scores a run on ``--data`` beside its baselines, ``predict``
    prints what ``predict`` returns for SOURCE, one result a line. Returns the command group,
    for more commands of the task's own."""

    def group():
        pass

    group.__doc__ = cls.about or f"The task {cls.task!r}."
    group = main.group(cls.task)(group)
    _train_command(group, cls, f"Train {cls.__name__}; report it beside its baselines.",
                   data_help=data_help, test_help=test_help)  # fmt: skip

    @group.command("evaluate")
    @click.option("--run", required=True, help=f"Run directory written by `{cls.task} train`.")
    @click.option("--data", required=True, help="Data to score, in the training data's form.")
    def evaluate(run, data):
        """Score a run on DATA beside its baselines; print it and store it in metrics.json."""
        _evaluate(cls, run, data)

    @group.command("predict")
    @click.option("--run", required=True, help=f"Run directory written by `{cls.task} train`.")
    @click.argument("source")
    def predict(run, source):
        """Print the prediction of each example of SOURCE, one a line."""
        for result in cls.load(run).predict(source):
            click.echo(result)

    return group


def _evaluate(cls, run, data, read=None, **options) -> None:
    from .tasks.rundir import evaluate_run

    click.echo(evaluate_run(cls, run, data, read=read, **options))


FORMATS = ["table", "ts", "idx", "numpy", "text"]


def _choice(*values) -> click.Choice:
    return click.Choice(values)


# --- forecast ----------------------------------------------------------------------------------


@main.group()
def forecast():
    """Forecast time series: train, predict, evaluate (see `rnnkit demo`)."""


def _make_forecaster(settings: dict, extra: dict):
    if "target" in settings:
        target = settings["target"]
        settings["target"] = target if len(target) > 1 else target[0]
    if extra["no_dates"]:
        settings["date_col"] = None
    if extra["preset"]:
        return Forecaster.from_preset(extra["preset"], **settings)
    return Forecaster(**settings)


_train_command(
    forecast,
    Forecaster,
    "Train a forecaster and write a run directory with metrics against baselines.",
    [
        click.option("--no-dates", is_flag=True, default=None, help="The data has no dates."),
        click.option("--preset", type=click.Choice(["tutorial"]), help="Start from a preset."),
    ],
    data_help="CSV/TSV file (may be gzipped).",
    build=_make_forecaster,
)


@forecast.command("evaluate")
@click.option("--run", required=True, help="Run directory written by `forecast train`.")
@click.option("--data", required=True, help="Data with the same columns.")
@click.option("--part", type=click.Choice(["test", "validation"]), default="test")
def forecast_evaluate(run, data, part):
    """Backtest a trained run on DATA's test period; print and store the table."""
    _evaluate(Forecaster, run, data, part=part)


@forecast.command("predict")
@click.option("--run", required=True, help="Run directory written by `forecast train`.")
@click.option("--data", required=True, help="Data ending where the forecast starts.")
@click.option("--future", help="Known-future covariates over the horizon (CSV).")
def forecast_predict(run, data, future):
    """Forecast the steps after the end of DATA; prints CSV."""
    click.echo(Forecaster.load(run).predict(data, future=future).to_csv(), nl=False)


# --- classify and tag ------------------------------------------------------------------------


def _read_options(function):
    """How classify reads its files: format, text and label columns."""
    return _with_options(function, _READ)


_READ = [
    click.option("--format", "fmt", type=click.Choice(FORMATS), help="Override the extension."),
    click.option("--text-col", default="text", show_default=True, help="Text column (tables)."),
    click.option("--label-col", default="label", show_default=True, help="Label column."),
]


@main.group()
def classify():
    """Classify sequences (many-to-one): text, signals, images row by row."""


_train_command(
    classify,
    Classifier,
    "Train a classifier; report it beside its baselines: one-to-one, majority, and NB-SVM, "
    "naive Bayes and TF-IDF logistic regression "
    "(text) or 1-NN with Euclidean and DTW distances (feature sequences).",
    _READ,
    data_help="Training data: .csv/.tsv, .ts, idx images, .npz.",
    test_help="Test data in the same format, scored after training.",
    read=("fmt", "text_col", "label_col"),
)


@classify.command("evaluate")
@click.option("--run", required=True, help="Run directory written by `classify train`.")
@click.option("--data", required=True, help="Labelled data in a format the run reads.")
@_read_options
def classify_evaluate(run, data, fmt, text_col, label_col):
    """Score a run on DATA; print and store accuracy and macro-F1 in its metrics.json."""
    read = {"fmt": fmt, "text_col": text_col, "label_col": label_col}
    _evaluate(Classifier, run, data, read=read)


@classify.command("predict")
@click.option("--run", required=True, help="Run directory written by `classify train`.")
@click.argument("source", default="-")
@click.option("--format", "fmt", type=click.Choice(FORMATS), help="Override the extension.")
@click.option("--text-col", default="text", show_default=True)
@click.option("--explain", is_flag=True, help="Print each token's attention weight.")
def classify_predict(run, source, fmt, text_col, explain):
    """Label each example of SOURCE (a file, or - for stdin: one text per line)."""
    from .tasks.classify import predict_lines

    click.echo(predict_lines(run, source, explain=explain, fmt=fmt, text_col=text_col))


@main.group()
def tag():
    """Tag every token (many-to-many): named entities in BIO/CoNLL data."""


_train_command(
    tag,
    Tagger,
    "Train a tagger; report entity-level scores beside the most-frequent-tag baseline.",
    data_help="Training data: token<TAB>tag lines (.bio, .conll).",
    test_help="Test data in the same format, scored after training.",
)


@tag.command("evaluate")
@click.option("--run", required=True, help="Run directory written by `tag train`.")
@click.option("--data", required=True, help="Tagged data (.bio, .conll).")
def tag_evaluate(run, data):
    """Score a run on DATA; print and store entity precision, recall and F1."""
    _evaluate(Tagger, run, data)


@tag.command("predict")
@click.option("--run", required=True, help="Run directory written by `tag train`.")
@click.argument("source", default="-")
def tag_predict(run, source):
    """Tag SOURCE: raw text, one sentence per line (a file or - for stdin), or a CoNLL file."""
    from .tasks.tag import predict_lines

    click.echo(predict_lines(run, source))


# --- caption ---------------------------------------------------------------------------------


@main.group()
def caption():
    """Caption images (one-to-many): train on a captioned set, score, caption new images."""


_IMAGES = click.option("--images", help="Folder of the images, where not beside the captions.")


def _scenes_for(extra: dict, out) -> Path | None:
    """The scene set ``caption train --scenes N`` trains on: made beside the run, in
    OUT-scenes, or that folder again where it holds the same set."""
    if extra["scenes"] is None:
        return None
    from .data.scenes import make_scenes

    folder = Path(f"{out}-scenes")
    wanted = {"count": extra["scenes"], "split": extra["split"], "seed": 0}
    if (folder / "scenes.json").is_file():
        made = json.loads((folder / "scenes.json").read_text())
        if {"count": len(made["scenes"]), "split": made["split"], "seed": made["seed"]} == wanted:
            return folder
        raise FileExistsError(
            f"{folder} holds another scene set; remove it, or train on it with --data"
        )
    make_scenes(folder, extra["scenes"], split=extra["split"])
    _echo(f"Made {extra['scenes']} scenes ({extra['split']} split) in {folder}")
    return folder


_train_command(
    caption,
    Captioner,
    "Train an image captioner; report BLEU, CIDEr-D (and, on a scene set, how true the "
    "captions are) beside Show and Tell, the nearest neighbour and the most frequent caption.",
    [
        _IMAGES,
        click.option(
            "--scenes",
            type=click.IntRange(10),
            help="Train on N scenes made in OUT-scenes (see make-scenes) instead of --data.",
        ),
        click.option(
            "--split",
            type=click.Choice(["random", "compositional"]),
            default="random",
            show_default=True,
            help="The split of --scenes.",
        ),
    ],
    data_help="A folder with images and a captions file (Flickr8k's captions.txt or "
    "Flickr8k.token.txt, COCO's captions_*.json), or the captions file.",
    test_help="Test data in the same form (default: the set's own test part, else a fraction).",
    read=("images",),
    made=_scenes_for,
)


@caption.command("evaluate")
@click.option("--run", required=True, help="Run directory written by `caption train`.")
@click.option("--data", required=True, help="A captioned set, as for train.")
@_IMAGES
def caption_evaluate(run, data, images):
    """Score a run on DATA: BLEU-1..4 and CIDEr-D of the model and every baseline (and the
    captions' correctness on a scene set); print them and store them in metrics.json."""
    _evaluate(Captioner, run, data, read={"images": images})


@caption.command("predict")
@click.option("--run", required=True, help="Run directory written by `caption train`.")
@click.argument("images", nargs=-1, required=True)
@click.option("--beam", type=click.IntRange(1), help="Beam size (default: the run's).")
@click.option("--attention-png", help="Draw where the decoder looked, word by word, for the "
              "first image.")  # fmt: skip
def caption_predict(run, images, beam, attention_png):
    """Print a caption for each IMAGE, one a line."""
    captioner = Captioner.load(run)
    for line in captioner.caption(list(images), beam_size=beam):
        click.echo(line)
    if attention_png:
        from .plots import plot_caption_attention

        plot_caption_attention(attention_png, *captioner.attention_map(images[0]))
        click.echo(f"Wrote {attention_png}")


@caption.command("make-scenes")
@click.option("--out", required=True, help="Folder to write.")
@click.option("--count", type=click.IntRange(3), default=3000, show_default=True,
              help="Images.")  # fmt: skip
@click.option("--split", type=click.Choice(["random", "compositional"]), default="random",
              show_default=True, help="compositional: three colour-shape pairs only in the "
              "test part.")  # fmt: skip
@click.option("--seed", type=_SEED, default=0, show_default=True)
@click.option("--overwrite", is_flag=True, help="Replace an existing folder.")
def caption_make_scenes(out, count, split, seed, overwrite):
    """Write a scene set: images of shapes with five captions each, in Flickr8k's layout."""
    from .data.scenes import make_scenes

    make_scenes(out, count, split=split, seed=seed, overwrite=overwrite)
    click.echo(f"Wrote {count} images with 5 captions each ({split} split) to {out}")


# --- lm ------------------------------------------------------------------------------------


# A language model's Python API takes a text or a path; the command line, always a file (a
# path mistyped would otherwise be a text of a few characters to train on).
_TEXT_FILE = click.Path(path_type=Path)


@main.group()
def lm():
    """Language models (many-to-many, aligned): train on a text, score, generate."""


_train_command(
    lm,
    LanguageModeler,
    "Train a language model; report bits per character / perplexity beside n-gram models.",
    data_help="A text file (may be gzipped); its end is held out.",
    data_type=_TEXT_FILE,
)


@lm.command("evaluate")
@click.option("--run", required=True, help="Run directory written by `lm train`.")
@click.option("--data", required=True, type=_TEXT_FILE, help="A text file to score.")
@click.option("--held-out", is_flag=True, help="Score only the part training held out.")
def lm_evaluate(run, data, held_out):
    """Score a run on DATA; print and store bits per character and perplexity."""
    _evaluate(LanguageModeler, run, data, held_out=held_out)


@lm.command("generate")
@click.option("--run", required=True, help="Run directory written by `lm train`.")
@click.option("--prime", default="", help="Text to start from.")
@click.option("--length", default=500, show_default=True, help="Tokens to generate.")
@click.option("--temperature", default=1.0, show_default=True, help="0: always the likeliest.")
@click.option("--top-k", type=int, help="Sample among the K likeliest tokens.")
@click.option("--top-p", type=float, help="Sample among the likeliest tokens of mass P.")
@click.option("--seed", type=_SEED, help="Make the text reproducible.")
@click.option("--allow-unk", is_flag=True, help="Let the text hold <unk> (rare words).")
def lm_generate(run, prime, length, temperature, top_k, top_p, seed, allow_unk):
    """Print text that follows PRIME, token by token as it is sampled."""
    modeler = LanguageModeler.load(run)
    pieces = modeler.generate(
        prime, length, temperature=temperature, top_k=top_k, top_p=top_p, seed=seed,
        allow_unk=allow_unk,
    )  # fmt: skip
    click.echo(prime, nl=False)
    for piece in pieces:
        click.echo(piece, nl=False)
    click.echo()


# --- translate -------------------------------------------------------------------------------


@main.group()
def translate():
    """Translate (many-to-many, unaligned): an attention encoder-decoder on sentence pairs."""


_train_command(
    translate,
    Translator,
    "Train a translator; report BLEU/chrF of greedy and beam search beside copying.",
    data_help="TSV of source<TAB>target lines (may be gzipped).",
    test_help="Test pairs (TSV); default: a fixed random --test-fraction of --data.",
)


@translate.command("evaluate")
@click.option("--run", required=True, help="Run directory written by `translate train`.")
@click.option("--data", required=True, help="TSV of source<TAB>reference lines.")
@click.option("--beam", type=int, help="Beam size (default: the run's; 1 = greedy only).")
def translate_evaluate(run, data, beam):
    """Score a run on DATA; print and store BLEU and chrF, and the copy baseline's."""
    _evaluate(Translator, run, data, beam_size=beam)


@translate.command("predict")
@click.option("--run", required=True, help="Run directory written by `translate train`.")
@click.argument("source", default="-")
@click.option("--beam", type=int, help="Beam size (default: the run's; 1 = greedy).")
@click.option("--attention-png", help="Write the first sentence's attention map here.")
def translate_predict(run, source, beam, attention_png):
    """Translate each line of SOURCE (a file, or - for stdin)."""
    from .tasks.translate import predict_lines

    click.echo(predict_lines(run, source, beam_size=beam, attention_png=attention_png))


# --- transcribe ------------------------------------------------------------------------------


@main.group()
def transcribe():
    """Speech or text-line images to text (many-to-many, unaligned): CTC recognisers."""


_train_command(
    transcribe,
    Transcriber,
    "Train a CTC recogniser; report CER/WER of greedy, beam and beam + LM decoding beside the "
    "baselines.",
    data_help="Manifest (CSV/TSV: path, transcript[, speaker]) or a folder of WAV or image "
    "files with .txt transcripts.",
    test_help="Test data in the same form, scored after training.",
)


@transcribe.command("evaluate")
@click.option("--run", required=True, help="Run directory written by `transcribe train`.")
@click.option("--data", required=True, help="Manifest or folder of transcribed files.")
def transcribe_evaluate(run, data):
    """Score a run on DATA: CER and WER of each decoding and baseline; stored in metrics.json."""
    _evaluate(Transcriber, run, data)


@transcribe.command("predict")
@click.option("--run", required=True, help="Run directory written by `transcribe train`.")
@click.argument("sources", nargs=-1, required=True)
@click.option(
    "--decoding",
    type=_choice("beam_lm", "beam", "greedy"),
    default="beam_lm",
    show_default=True,
    help="Beam search with the language model, without it, or the best path.",
)
@click.option("--alignment-png", help="Draw the first utterance's CTC spikes over its input here.")
def transcribe_predict(run, sources, decoding, alignment_png):
    """Print the transcript of each WAV or image file of SOURCES (files, manifests, folders,
    or - for one file on stdin), one a line."""
    from .tasks.transcribe import predict_lines

    click.echo(predict_lines(run, sources, decoding=decoding, alignment_png=alignment_png))


@transcribe.command("make-data")
@click.option(
    "--kind",
    type=_choice("speech", "image"),
    required=True,
    help="Spoken digit strings (espeak-ng) or printed text lines (this machine's fonts).",
)
@click.option("--out", required=True, help="Folder to write: train.tsv, test.tsv, the files.")
@click.option("--train", "train_count", type=click.IntRange(1), default=2000, show_default=True)
@click.option("--test", "test_count", type=click.IntRange(1), default=400, show_default=True)
@click.option(
    "--text",
    help="Plain-text file (may be gzipped) the image lines are taken from (default: the Zen of "
    "Python).",
)
@click.option("--seed", type=_SEED, default=0, show_default=True)
def transcribe_make_data(kind, out, train_count, test_count, text, seed):
    """Make a recognition set whose test voices or fonts training never meets."""
    if kind == "speech":
        from .data.spoken_digits import make_spoken_digits

        written = make_spoken_digits(out, train=train_count, test=test_count, seed=seed)
    else:
        from .data.text_lines import make_text_lines

        written = make_text_lines(out, text=text, train=train_count, test=test_count, seed=seed)
    click.echo(f"Wrote {written['train']} ({train_count}) and {written['test']} ({test_count}).")


# --- music -----------------------------------------------------------------------------------


@main.group()
def music():
    """Polyphonic music (one-to-many): train on scores, score, compose from a seed."""


_train_command(
    music,
    Composer,
    "Train a frame model on scores; report NLL per frame beside count baselines.",
    data_help="'bach' (the chorales music21 ships), a score file (MIDI, MusicXML, ABC) or a "
    "folder of them; a tenth of the pieces, by name, is held out for the test.",
)


@music.command("evaluate")
@click.option("--run", required=True, help="Run directory written by `music train`.")
@click.option("--data", default=None, help="Pieces to score (default: the run's test part "
              "of the Bach chorales).")  # fmt: skip
def music_evaluate(run, data):
    """Score a run; print and store NLL per frame of the model and every baseline."""
    if data is None:
        data = _bach_test_part(run)
    _evaluate(Composer, run, data)


def _bach_test_part(run):
    """The run's test pieces when it trained on the Bach chorales: those of neither part."""
    from .data.music import bach_chorales

    composer = Composer.load(run)
    kept = set(composer.parts_["train"]) | set(composer.parts_["validation"])
    pieces = [p for p in bach_chorales(composer.frames_per_quarter) if p.name not in kept]
    if not pieces:
        raise ValueError(f"run={run!r} left none of the Bach chorales out; give --data")
    return pieces


@music.command("generate")
@click.option("--run", required=True, help="Run directory written by `music train`.")
@click.option("--prime", default=None, help="A note (C4), a chord (C4,E4,G4) or a score file.")
@click.option("--prime-bars", default=2, show_default=True, help="Bars of a score file read.")
@click.option("--bars", default=8, show_default=True, help="Bars to compose after the prime.")
@click.option("--temperature", default=1.0, show_default=True, help="0: the likelier choice.")
@click.option("--top-p", type=float, help="Keep an outcome only within this mass.")
@click.option("--seed", type=_SEED, help="Make the piece reproducible.")
@click.option(
    "--out", required=True, help="Path without suffix: writes .mid, .musicxml, .png, .wav."
)
def music_generate(run, prime, prime_bars, bars, temperature, top_p, seed, out):
    """Compose BARS bars after PRIME and write them as MIDI, MusicXML, a piano roll and sound."""
    from .tasks.music import write_sample

    written = write_sample(Composer.load(run), out, prime=prime, bars=bars,
                           temperature=temperature, top_p=top_p, seed=seed,
                           prime_bars=prime_bars)  # fmt: skip
    stats = ", ".join(f"{k} {v:.3g}" for k, v in written["statistics"].items())
    click.echo(f"Wrote {out}.mid, .musicxml, .png and .wav ({written['sound']}): "
               f"{written['frames']} frames, the first {written['prime_frames']} the prime; "
               f"{stats}")  # fmt: skip


# --- the rest ------------------------------------------------------------------------------


@main.command()
@click.option("--out", default="runs/demo", show_default=True, help="Run directory to write.")
@click.option("--epochs", type=int, help="Fewer epochs for a quick look.")
@click.option("--no-tutorial", is_flag=True, help="Skip the tutorial recipe (~2 minutes).")
def demo(out, epochs, no_tutorial):
    """The main job, offline: forecast GOOG's daily close over its last year of data."""
    from .tasks.forecast import DEMO_INTRO
    from .tasks.forecast import demo as run_demo

    click.echo(DEMO_INTRO)
    click.echo(run_demo(out, epochs=epochs, tutorial=not no_tutorial))


@main.command()
@click.option("--run", required=True, help="A run directory trained with --diagnose-every.")
@click.option("--out", help="Where to write the pictures (default: the run's diagnostics/).")
def diagnose(run, out):
    """Draw the gradient flow, gates and states a run recorded while it trained."""
    from pathlib import Path

    from .diagnostics import read_run, render, summary

    records = read_run(run)
    paths = render(records, out or Path(run) / "diagnostics")
    click.echo(summary(records))
    click.echo("Wrote " + ", ".join(str(p) for p in paths))


@main.command()
@click.option("--run", required=True, help="A run directory of any task.")
@click.option("--out", help="The HTML file to write (default: the run's report.html).")
def report(run, out):
    """Write a run as one self-contained HTML page: data, scores beside the baselines,
    learning curves, pictures, settings, warnings."""
    from .tasks.report import write_report
    from .tasks.rundir import require_run

    click.echo(f"Wrote {write_report(require_run(run), out)}")


@main.command("export")
@click.option("--run", required=True, help="A run directory of any task.")
@click.option("--format", "fmt", type=_choice("onnx", "pt2"), default="onnx", show_default=True,
              help="ONNX (ONNX Runtime and others) or a torch.export program (.pt2).")  # fmt: skip
@click.option("--out", required=True, help="Folder to write: the graphs and export.json.")
@click.option("--overwrite", is_flag=True, help="Replace an existing folder.")
def export_command(run, fmt, out, overwrite):
    """Export a run's model, each graph checked against it at new batch sizes and lengths."""
    import json

    from .tasks import all_tasks
    from .tasks.rundir import read_json, require_run

    task = read_json(require_run(run) / "config.json").get("task")
    tasks = all_tasks()
    if task not in tasks:
        raise click.ClickException(f"run={run!r} holds a {task!r} run, which rnnkit does not know")
    written = tasks[task].load(run).export(out, format=fmt, overwrite=overwrite)
    described = json.loads((written / "export.json").read_text())
    for graph in described["graphs"].values():
        check = graph["check"]
        proof = (
            f"equal to the model at batch {check['batch']}, {check['time']} steps within "
            f"{check['max_abs_diff']:.1e} (largest difference)"
            if check["checked"]
            else f"not checked: {check['why']}"
        )
        click.echo(f"Wrote {written / graph['file']}: {proof}")
    click.echo(f"Wrote {written / 'export.json'}: inputs, outputs, settings and data state.")


_train_command(
    main,
    MemoryBenchmark,
    "Train each cell at each T on a long-dependency task; table, plots, gradient flow.",
    name="bench-memory",
)
