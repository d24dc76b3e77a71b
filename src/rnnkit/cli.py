"""``rnnkit <command>``: a thin shell over the Python API.

Every ``<task> train`` command is made the same way: the task's own options, then one option
per training setting the task's estimator takes (``rnnkit.tasks.settings.TRAINING``), each
with its help and the estimator's default; the run goes through
``rnnkit.tasks.rundir.train_run``. Under torchrun only rank 0 prints.
"""

import inspect

import click

from .registry import CELLS
from .tasks.classify import Classifier
from .tasks.forecast import Forecaster
from .tasks.lm import LanguageModeler
from .tasks.memory import MemoryBenchmark
from .tasks.music import Composer
from .tasks.options import parse_assignments, parse_value
from .tasks.tag import Tagger
from .tasks.translate import Translator


class _Main(click.Group):
    """Bad input ends in one line that says what is wrong, not a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (ValueError, FileNotFoundError, FileExistsError) as error:
            raise click.ClickException(str(error)) from error


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


def _shown(value) -> str:
    if value is None or (isinstance(value, tuple | list) and not value):
        return "none"
    if isinstance(value, tuple | list):
        return ",".join(map(str, value))
    return str(value)


def _setting(cls, name: str, help: str, *flags, dest=None, shown=None, **kwargs):
    """An option for the setting ``name`` of estimator ``cls``: its default is left to the
    estimator (the option defaults to None) and shown in the help as the estimator's.
    ``dest``: the command's parameter, where ``name`` is taken by another option (the
    command's ``build`` then gives it to the setting). ``shown``: the default as the help
    says it, where the value (None) would not say it."""
    default = inspect.signature(cls).parameters[name].default
    flags = flags or (f"--{name.replace('_', '-')}",)
    return click.option(*flags, dest or name, default=None,
                        help=f"{help} [default: {shown or _shown(default)}]",
                        **kwargs)  # fmt: skip


def _training(cls) -> list:
    """One option per training setting ``cls`` takes, with the help and default of
    ``rnnkit.tasks.settings.TRAINING`` and the task's own default."""
    from .tasks.settings import TRAINING

    options = []
    for name in cls.training:
        setting = TRAINING[name]
        if setting.choices:
            kind = click.Choice(setting.choices)
        else:  # a setting that may be off also takes "none"
            kind = _OrNone(setting.type) if setting.optional else setting.type
        # A task with a budget rule sets these from its data unless they are given.
        ruled = name in cls.automatic or (name in ("epochs", "steps") and cls.automatic)
        shown = "by the budget rule, see the run's report" if ruled else None
        options.append(_setting(cls, name, setting.help, type=kind, shown=shown))
    return options


def _layer_options() -> click.Option:
    return click.option(
        "--option",
        "rnn_options",
        multiple=True,
        help="Layer option KEY=VALUE, e.g. recurrent_dropout=0.2, layer_norm=true (repeatable).",
    )


def _with_options(function, options: list):
    """``function`` decorated with ``options``, in the order listed (as ``--help`` shows)."""
    for option in reversed(options):
        function = option(function)
    return function


def _settings(given: dict) -> dict:
    """The settings the user gave (others keep the estimator's defaults), ``--option``
    parsed into ``rnn_options`` and "none" into None."""
    settings = {}
    for name, value in given.items():
        if value is None or value == ():
            continue
        settings[name] = None if value is _NONE else value
    if "rnn_options" in settings:
        settings["rnn_options"] = parse_assignments(
            settings["rnn_options"], "--option", parse=parse_value
        )
    return settings


def _echo(text: str) -> None:
    """Print ``text``, on the main process only under torchrun."""
    from .training.distributed import process_rank

    if text and process_rank() == 0:
        click.echo(text)


def _train_command(group, cls, summary: str, options: list, *, data_help=None, test_help=None,
                   read=(), build=None, name="train"):  # fmt: skip
    """``<group> train``: ``--data`` (unless ``data_help`` is None: the task makes its own),
    ``--test`` (with ``test_help``), ``options`` (the task's own) and the training settings
    of ``cls``, then ``rundir.train_run``. ``read``: options that say how to read the data,
    not settings; ``build(settings) -> estimator`` where the command line spells settings
    its own way (default ``cls(**settings)``)."""

    def train(out, overwrite, resume, data=None, test=None, **given):
        from .tasks.rundir import train_run

        reading = {name: given.pop(name) for name in read}
        settings = _settings(given)
        estimator = build(settings) if build else cls(**settings)
        _echo(train_run(estimator, data, out, test=test, read=reading, overwrite=overwrite,
                        resume=resume))  # fmt: skip

    train.__doc__ = summary
    common = [click.option("--data", required=True, help=data_help)] if data_help else []
    if test_help:
        common.append(click.option("--test", help=test_help))
    placement = [
        click.option("--out", required=True, help="Run directory to write."),
        click.option("--overwrite", is_flag=True, help="Replace an existing run directory."),
        click.option("--resume", is_flag=True, help="Continue an interrupted run."),
    ]
    everything = [*common, *options, *_training(cls), *placement]
    return group.command(name)(_with_options(train, everything))


def _evaluate(cls, run, data, read=None, **options) -> None:
    from .tasks.rundir import evaluate_run

    click.echo(evaluate_run(cls, run, data, read=read, **options))


FORMATS = ["table", "ts", "idx", "numpy", "text"]


def _choice(*values) -> click.Choice:
    return click.Choice(values)


# Settings that mean the same in every task that has them: their help, once.
COMMON = {
    "cell": ("Recurrent cell.", _choice(*CELLS)),
    "hidden_size": ("Units per recurrent layer.", int),
    "num_layers": ("Stacked recurrent layers.", int),
    "embedding_dim": ("Size of the token embedding.", int),
    "dropout": ("Dropout (between layers and before the output).", float),
    "output_dropout": ("Dropout before the output layer.", float),
    "embedding_dropout": ("Drop whole tokens from the embedding in training.", float),
    "min_freq": ("Rarer tokens become <unk>.", int),
    "val": ("Fraction held out for validation.", float),
}


def _own(cls, *specs) -> list:
    """Options for the settings of ``cls``: a name of ``COMMON``, or ``(name, help, type,
    *flags)``, type ``bool`` for a ``--name/--no-name`` flag or ``list`` for a repeatable
    option; ``"rnn_options"`` is ``--option KEY=VALUE``."""
    options = []
    for spec in specs:
        if spec == "rnn_options":
            options.append(_layer_options())
            continue
        name, help, kind, *flags = (spec, *COMMON[spec]) if isinstance(spec, str) else spec
        if kind is bool:
            dash = name.replace("_", "-")
            options.append(_setting(cls, name, help, *(flags or [f"--{dash}/--no-{dash}"])))
        elif kind is list:
            options.append(_setting(cls, name, help, *flags, multiple=True))
        else:
            options.append(_setting(cls, name, help, *flags, type=kind))
    return options


# --- forecast ----------------------------------------------------------------------------------


@main.group()
def forecast():
    """Forecast time series: train, predict, evaluate (see `rnnkit demo`)."""


def _make_forecaster(settings: dict):
    preset = settings.pop("preset", None)
    if "target" in settings:
        target = settings["target"]
        settings["target"] = list(target) if len(target) > 1 else target[0]
    if "where" in settings:
        settings["where"] = parse_assignments(settings["where"], "--where", parse=str)
    if settings.pop("no_dates", False):
        settings["date_col"] = None
    for name in ("covariates", "known_future"):
        if name in settings:
            settings[name] = list(settings[name])
    return Forecaster.from_preset(preset, **settings) if preset else Forecaster(**settings)


# fmt: off
_train_command(
    forecast,
    Forecaster,
    "Train a forecaster and write a run directory with metrics against baselines.",
    [
        *_own(
            Forecaster,
            ("target", "Column to forecast (repeatable).", list, "--target", "-t"),
            ("covariates", "Past-observed input column (repeatable).", list, "--covariate"),
            ("known_future", "Input column known ahead (repeatable).", list),
            ("date_col", 'Date column ("auto": a column named "date").', str),
        ),
        click.option("--no-dates", is_flag=True, default=None, help="The data has no dates."),
        *_own(
            Forecaster,
            ("where", "Keep rows with COLUMN=VALUE (repeatable).", list),
            ("fill", "Missing values.", _choice("error", "ffill", "drop")),
            "val",
            ("test", "Test fraction.", float),
            ("val_start", "First validation date.", str),
            ("test_start", "First test date.", str),
            ("lookback", "Steps of history per forecast.", int),
            ("horizon", "Steps forecast at once.", int),
            ("transform", "What the model reads and predicts.",
             _choice("diff", "returns", "log_returns", "none")),
            ("scaler", "Scaling, fitted on the training rows.",
             _choice("standard", "minmax", "none")),
            ("model", "Forecasting strategy.", _choice("direct", "recursive", "seq2seq")),
            "cell", "hidden_size", "num_layers",
            ("dropout", "Dropout between recurrent layers.", float),
            "output_dropout", "rnn_options",
            ("interval", "Prediction interval level.", _OrNone(float)),
            ("season", "Period of the seasonal naive baseline.", int),
            ("ar_order", "Lags of the linear autoregression.", int),
        ),
        click.option("--preset", type=click.Choice(["tutorial"]), help="Start from a preset."),
    ],
    data_help="CSV/TSV file (may be gzipped).",
    build=_make_forecaster,
)
# fmt: on


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


# fmt: off
_train_command(
    classify,
    Classifier,
    "Train a classifier; report it beside its baselines: one-to-one, majority, and NB-SVM "
    "(text) or 1-NN with Euclidean and DTW distances (feature sequences).",
    [
        *_READ,
        *_own(
            Classifier, "cell",
            ("hidden_size", "Units per recurrent layer; unset: 128 for text, 64 for feature "
             "sequences.", int),
            "num_layers", "embedding_dim", "dropout",
            ("pooling", "How the sequence becomes one vector.",
             _choice("last", "mean", "max", "attention")),
            ("tokenizer", "Text tokens.", _choice("word", "char", "bpe")),
            "min_freq",
            ("max_length", "Keep the first this many steps.", int),
            ("ensemble", "Models from consecutive seeds, averaged.", int),
            ("conv_channels", "Channels of each convolution block before the RNN (none: "
             "no front-end); unset: 64,64,64 for feature sequences, none for text.", _Integers()),
            ("conv_kernels", "Kernel width of each convolution block.", _Integers()),
            ("downsample", "Max-pool the front-end's output by this factor.", int),
            ("ngrams", "Text: add a linear bag of hashed token n-grams up to this order to "
             "the network's logits (0: none).", int),
            ("normalize", "Feature sequences: standardise each channel on the training part, "
             "or z-normalise each series first (the UCR convention).",
             _choice("channel", "series")),
            ("resample", "Feature sequences: stretch or squeeze every series to this many "
             "steps (longest: the training part's longest; none: keep each length).",
             _OrNone(int, "longest")),
            ("baseline", "Also train and score the baselines (one-to-one, NB-SVM, 1-NN).", bool),
            "rnn_options",
            ("val", "Fraction held out for validation; none: by the budget rule (0 under "
             "1,000 examples, else 0.1).", float),
        ),
    ],
    data_help="Training data: .csv/.tsv, .ts, idx images, .npz.",
    test_help="Test data in the same format, scored after training.",
    read=("fmt", "text_col", "label_col"),
)
# fmt: on


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


# fmt: off
_train_command(
    tag,
    Tagger,
    "Train a tagger; report entity-level scores beside the most-frequent-tag baseline.",
    _own(
        Tagger, "cell", "hidden_size", "num_layers", "embedding_dim", "dropout",
        ("crf", "Decode with a CRF, or a softmax per token.", bool),
        ("chars", "Character-level BiRNN features.", bool),
        "rnn_options", "val",
    ),
    data_help="Training data: token<TAB>tag lines (.bio, .conll).",
    test_help="Test data in the same format, scored after training.",
)
# fmt: on


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


# --- lm ------------------------------------------------------------------------------------


@main.group()
def lm():
    """Language models (many-to-many, aligned): train on a text, score, generate."""


# fmt: off
_train_command(
    lm,
    LanguageModeler,
    "Train a language model; report bits per character / perplexity beside n-gram models.",
    _own(
        LanguageModeler,
        ("level", "Tokens.", _choice("char", "word")),
        ("lowercase", "Lower-case the text (none: for words only).", bool,
         "--lowercase/--keep-case"),
        ("max_vocab", "Word types kept (word level).", int),
        "cell", "hidden_size", "num_layers", "embedding_dim", "dropout",
        ("tie_weights", "Output layer = embedding.", bool),
        "embedding_dropout", "output_dropout",
        ("bptt", "Steps per truncated-BPTT segment.", int),
        ("eval_every", "Steps between scorings of the held-out text.", int),
        "rnn_options",
        ("val", "Fraction at the end of the text held out.", float),
    ),
    data_help="A text file (may be gzipped); its end is held out.",
)
# fmt: on


@lm.command("evaluate")
@click.option("--run", required=True, help="Run directory written by `lm train`.")
@click.option("--data", required=True, help="A text file to score.")
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
@click.option("--seed", type=int, help="Make the text reproducible.")
def lm_generate(run, prime, length, temperature, top_k, top_p, seed):
    """Print text that follows PRIME, token by token as it is sampled."""
    modeler = LanguageModeler.load(run)
    pieces = modeler.generate(
        prime, length, temperature=temperature, top_k=top_k, top_p=top_p, seed=seed
    )
    click.echo(prime, nl=False)
    for piece in pieces:
        click.echo(piece, nl=False)
    click.echo()


# --- translate -------------------------------------------------------------------------------


@main.group()
def translate():
    """Translate (many-to-many, unaligned): an attention encoder-decoder on sentence pairs."""


def _make_translator(settings: dict):
    # --test names the test pairs: the setting test (a fraction) is --test-fraction.
    if "test_fraction" in settings:
        settings["test"] = settings.pop("test_fraction")
    return Translator(**settings)


# fmt: off
_train_command(
    translate,
    Translator,
    "Train a translator; report BLEU/chrF of greedy and beam search beside copying.",
    [
        *_own(
            Translator,
            ("tokenizer", "Tokens per side.", _choice("bpe", "word")),
            ("vocab_size", "BPE subwords per side.", int),
            ("max_length", "Longest side in tokens kept.", int),
            "cell", "hidden_size", "num_layers", "embedding_dim", "dropout",
            ("attention", "Attention of the decoder.",
             _choice("additive", "dot", "general", "none")),
            ("input_feeding", "Feed the attention output to the next step.", bool),
            ("bridge", "Decoder's first state.", _choice("linear", "zeros")),
            ("sampling", "Scheduled-sampling probability.", float),
            ("min_freq", "Rarer words become <unk> (word tokenizer).", int),
            ("beam_size", "Beam reported beside greedy.", int),
            ("length_penalty", "Beam score = log p / length^this.", float),
            "rnn_options", "val",
        ),
        _setting(Translator, "test", "Fraction held out for the test without --test.",
                 "--test-fraction", dest="test_fraction", type=float),
    ],
    data_help="TSV of source<TAB>target lines (may be gzipped).",
    test_help="Test pairs (TSV); default: a fixed random --test-fraction of --data.",
    build=_make_translator,
)
# fmt: on


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


# --- music -----------------------------------------------------------------------------------


@main.group()
def music():
    """Polyphonic music (one-to-many): train on scores, score, compose from a seed."""


# fmt: off
_train_command(
    music,
    Composer,
    "Train a frame model on scores; report NLL per frame beside count baselines.",
    _own(
        Composer,
        ("resolution", "A frame is this note value.", _choice("16th", "8th")),
        ("transpose", "Train in all keys, move every piece to C major / A minor, or neither.",
         _choice("all", "c", "none")),
        "cell", "hidden_size", "num_layers", "dropout",
        ("output", "Chords drawn pitch by pitch (nade) or independent pitches.",
         _choice("nade", "bernoulli")),
        ("nade_size", "NADE's hidden units.", int),
        "rnn_options",
    ),
    data_help="'bach' (the chorales music21 ships), a score file (MIDI, MusicXML, ABC) or a "
              "folder of them; a tenth of the pieces, by name, is held out for the test.",
)
# fmt: on


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
@click.option("--seed", type=int, help="Make the piece reproducible.")
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


def _integers(text: str | None, option: str) -> list[int] | None:
    if text is None or text.strip().lower() == "none":
        return None
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise click.BadParameter(
            f"{text!r} must be integers separated by commas", param_hint=option
        ) from None


def _make_benchmark(settings: dict):
    if "lengths" in settings:
        settings["lengths"] = _integers(settings["lengths"], "--T")
    if "cells" in settings:
        settings["cells"] = [c.strip() for c in settings["cells"].split(",") if c.strip()]
    return MemoryBenchmark(**settings)


# fmt: off
_bench_options = _own(
    MemoryBenchmark,
    ("problem", "The long-dependency problem.", _choice("adding", "copy", "smnist"), "--task"),
    ("lengths", "Sequence lengths, comma-separated (copy: the delay; smnist: 784, its only "
     "length; none: 100,200,400).", str, "--T"),
    ("cells", "Cells to compare, comma-separated.", str),
    ("hidden_size", "Units of each cell.", int),
    ("train_size", "Training sequences.", int),
    ("test_size", "Test sequences.", int),
)
# fmt: on


_train_command(
    main,
    MemoryBenchmark,
    "Train each cell at each T on a long-dependency task; table, plots, gradient flow.",
    _bench_options,
    build=_make_benchmark,
    name="bench-memory",
)
