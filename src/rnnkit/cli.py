"""``rnnkit <command>``: a thin shell over the Python API."""

import click

from .tasks.options import parse_assignments, parse_value


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


# --- forecast ----------------------------------------------------------------------------------


@main.group()
def forecast():
    """Forecast time series: train, predict, evaluate (see `rnnkit demo`)."""


def _training_loop() -> list:
    """The options of the training loop that every task's ``train`` has."""
    return [
        click.option("--epochs", type=int),
        click.option("--batch-size", type=int),
        click.option("--optimizer", type=click.Choice(["adam", "adamw", "sgd"])),
        click.option("--lr", type=float),
        click.option("--weight-decay", type=float),
        click.option("--clip-norm", type=float),
        click.option("--schedule", type=click.Choice(["cosine", "plateau"])),
        click.option("--patience", type=int, help="Early-stopping patience in epochs."),
        click.option(
            "--diagnose-every",
            type=int,
            help="Record gradient flow and gate statistics every N steps (`rnnkit diagnose`).",
        ),
    ]


def _with_options(function, options: list):
    """``function`` decorated with ``options``, in the order listed (as ``--help`` shows)."""
    for option in reversed(options):
        function = option(function)
    return function


def _forecast_settings(function):
    """The settings of ``Forecaster``, as options that default to the preset's or the API's."""
    options = [
        click.option("--target", "-t", multiple=True, help="Column to forecast (repeatable)."),
        click.option(
            "--covariate", "covariates", multiple=True, help="Past-observed input column."
        ),
        click.option("--known-future", multiple=True, help="Input column known ahead of time."),
        click.option("--date-col", help='Date column (default: a column named "date").'),
        click.option("--no-dates", is_flag=True, help="The data has no date column."),
        click.option("--where", multiple=True, help="Keep rows with COLUMN=VALUE (repeatable)."),
        click.option(
            "--fill", type=click.Choice(["error", "ffill", "drop"]), help="Missing values."
        ),
        click.option("--val", type=float, help="Validation fraction (default 0.1; tutorial: 0)."),
        click.option("--test", type=float, help="Test fraction (default 0.2)."),
        click.option("--val-start", help="First validation date."),
        click.option("--test-start", help="First test date."),
        click.option("--lookback", type=int, help="Steps of history per forecast (default 60)."),
        click.option("--horizon", type=int, help="Steps forecast at once (default 1)."),
        click.option("--transform", type=click.Choice(["diff", "returns", "log_returns", "none"])),
        click.option("--scaler", type=click.Choice(["standard", "minmax", "none"])),
        click.option("--model", type=click.Choice(["direct", "recursive", "seq2seq"])),
        click.option("--cell", type=click.Choice(["lstm", "gru", "rnn"])),
        click.option("--hidden-size", type=int),
        click.option("--num-layers", type=int),
        click.option("--dropout", type=float, help="Dropout between recurrent layers."),
        click.option("--output-dropout", type=float),
        click.option(
            "--option",
            "cell_options",
            multiple=True,
            help="Layer option KEY=VALUE, e.g. layer_norm=true, zoneout=0.1 (repeatable).",
        ),
        *_training_loop(),
        click.option("--interval", type=float, help="Prediction interval level (default 0.9)."),
        click.option("--season", type=int, help="Period of the seasonal naive baseline."),
        click.option("--ar-order", type=int, help="Lags of the linear autoregression."),
        click.option("--seed", type=int),
        click.option("--preset", type=click.Choice(["tutorial"]), help="Start from a preset."),
    ]
    return _with_options(function, options)


def _make_forecaster(preset, target, where, no_dates, cell_options, **settings):
    from .tasks.forecast import Forecaster

    given = {name: value for name, value in settings.items() if value not in (None, ())}
    if target:
        given["target"] = list(target) if len(target) > 1 else target[0]
    if where:
        given["where"] = parse_assignments(where, "--where", parse=str)
    if no_dates:
        given["date_col"] = None
    if cell_options:
        given["cell_options"] = parse_assignments(cell_options, "--option", parse=parse_value)
    return Forecaster.from_preset(preset, **given) if preset else Forecaster(**given)


@forecast.command("train")
@click.option("--data", required=True, help="CSV/TSV file (may be gzipped).")
@_forecast_settings
@click.option("--out", required=True, help="Run directory to write.")
@click.option("--overwrite", is_flag=True, help="Replace an existing run directory.")
@click.option("--resume", is_flag=True, help="Continue an interrupted run from its checkpoint.")
def forecast_train(data, out, overwrite, resume, **settings):
    """Train a forecaster and write a run directory with metrics against baselines."""
    from .tasks.forecast import train_run

    forecaster = _make_forecaster(**settings)
    click.echo(train_run(forecaster, data, out, overwrite=overwrite, resume=resume))


@forecast.command("evaluate")
@click.option("--run", required=True, help="Run directory written by `forecast train`.")
@click.option("--data", required=True, help="Data with the same columns.")
@click.option("--part", type=click.Choice(["test", "validation"]), default="test")
def forecast_evaluate(run, data, part):
    """Backtest a trained run on DATA's test period; print and store the table."""
    from .tasks.forecast import evaluate_run

    click.echo(evaluate_run(run, data, part))


@forecast.command("predict")
@click.option("--run", required=True, help="Run directory written by `forecast train`.")
@click.option("--data", required=True, help="Data ending where the forecast starts.")
@click.option("--future", help="Known-future covariates over the horizon (CSV).")
def forecast_predict(run, data, future):
    """Forecast the steps after the end of DATA; prints CSV."""
    from .tasks.forecast import Forecaster

    click.echo(Forecaster.load(run).predict(data, future=future).to_csv(), nl=False)


# --- classify and tag ------------------------------------------------------------------------

FORMATS = ["table", "ts", "idx", "numpy", "text"]


def _settings(given: dict, options) -> dict:
    """The options the user gave (others keep the API's defaults), ``--option`` parsed."""
    settings = {name: value for name, value in given.items() if value is not None}
    if options:
        settings["rnn_options"] = parse_assignments(options, "--option", parse=parse_value)
    return settings


def _training_options(function):
    """Options that classify and tag share: the recurrent stack and the training loop."""
    options = [
        click.option("--cell", type=click.Choice(["lstm", "gru", "rnn"])),
        click.option("--hidden-size", type=int),
        click.option("--num-layers", type=int),
        click.option("--embedding-dim", type=int),
        click.option("--dropout", type=float),
        click.option(
            "--option",
            "rnn_options",
            multiple=True,
            help="Layer option KEY=VALUE, e.g. recurrent_dropout=0.2, layer_norm=true.",
        ),
        *_training_loop(),
        click.option("--val", type=float, help="Fraction held out for validation."),
        click.option("--seed", type=int),
        click.option("--out", required=True, help="Run directory to write."),
        click.option("--overwrite", is_flag=True, help="Replace an existing run directory."),
        click.option("--resume", is_flag=True, help="Continue an interrupted run."),
    ]
    return _with_options(function, options)


@main.group()
def classify():
    """Classify sequences (many-to-one): text, signals, images row by row."""


@classify.command("train")
@click.option("--data", required=True, help="Training data: .csv/.tsv, .ts, idx images, .npz.")
@click.option("--test", help="Test data in the same format, scored after training.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), help="Override the extension.")
@click.option("--text-col", default="text", show_default=True, help="Text column (tables).")
@click.option("--label-col", default="label", show_default=True, help="Label column (tables).")
@click.option("--pooling", type=click.Choice(["last", "mean", "max", "attention"]))
@click.option("--tokenizer", type=click.Choice(["word", "char", "bpe"]))
@click.option("--min-freq", type=int, help="Rarer tokens become <unk>.")
@click.option("--max-length", type=int, help="Keep the first this many steps.")
@click.option("--ensemble", type=int, help="Models from consecutive seeds, averaged.")
@click.option("--no-baseline", is_flag=True, help="Skip the one-to-one baseline.")
@_training_options
def classify_train(data, test, fmt, text_col, label_col, out, overwrite, resume, no_baseline,
                   rnn_options, **given):  # fmt: skip
    """Train a classifier; report it beside the one-to-one and majority baselines."""
    from .tasks.classify import Classifier, read_examples
    from .tasks.supervised import train_run

    read = {"fmt": fmt, "text_col": text_col, "label_col": label_col}
    classifier = Classifier(**_settings(given, rnn_options), baseline=not no_baseline)
    train = read_examples(data, **read)
    test = read_examples(test, **read) if test else None
    click.echo(train_run(classifier, train, out, test=test, overwrite=overwrite, resume=resume))


@classify.command("evaluate")
@click.option("--run", required=True, help="Run directory written by `classify train`.")
@click.option("--data", required=True, help="Labelled data in a format the run reads.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), help="Override the extension.")
@click.option("--text-col", default="text", show_default=True)
@click.option("--label-col", default="label", show_default=True)
def classify_evaluate(run, data, fmt, text_col, label_col):
    """Score a run on DATA; print and store accuracy and macro-F1 in its metrics.json."""
    from .tasks.classify import evaluate_run, read_examples

    examples = read_examples(data, fmt=fmt, text_col=text_col, label_col=label_col)
    click.echo(evaluate_run(run, examples))


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


@tag.command("train")
@click.option("--data", required=True, help="Training data: token<TAB>tag lines (.bio, .conll).")
@click.option("--test", help="Test data in the same format, scored after training.")
@click.option("--crf/--no-crf", default=None, help="Decode with a CRF (default) or softmax.")
@click.option("--chars/--no-chars", default=None, help="Character-level BiRNN features.")
@_training_options
def tag_train(data, test, out, overwrite, resume, rnn_options, **given):
    """Train a tagger; report entity-level scores beside the most-frequent-tag baseline."""
    from .tasks.supervised import train_run
    from .tasks.tag import Tagger, read_sentences

    tagger = Tagger(**_settings(given, rnn_options))
    if test is not None:  # read now: a bad test file should not wait for training
        tokens, tags, _ = read_sentences(test)
        test = list(zip(tokens, tags, strict=True))
    click.echo(train_run(tagger, data, out, test=test, overwrite=overwrite, resume=resume))


@tag.command("evaluate")
@click.option("--run", required=True, help="Run directory written by `tag train`.")
@click.option("--data", required=True, help="Tagged data (.bio, .conll).")
def tag_evaluate(run, data):
    """Score a run on DATA; print and store entity precision, recall and F1."""
    from .tasks.tag import evaluate_run

    click.echo(evaluate_run(run, data))


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


@lm.command("train")
@click.option("--data", required=True, help="A text file (may be gzipped); its end is held out.")
@click.option("--level", type=click.Choice(["char", "word"]), help="Tokens (default char).")
@click.option("--lowercase/--keep-case", default=None, help="Default: keep case for char.")
@click.option("--max-vocab", type=int, help="Word types kept (word level; default 10000).")
@click.option("--tie-weights", is_flag=True, default=None, help="Output layer = embedding.")
@click.option("--embedding-dropout", type=float)
@click.option("--output-dropout", type=float)
@click.option("--minutes", type=float, help="Time limit of training, validation included.")
@click.option("--bptt", type=int, help="Steps per truncated-BPTT segment (default 128).")
@click.option("--eval-every", type=int, help="Steps between scorings of the held-out text.")
@_training_options
def lm_train(data, out, overwrite, resume, rnn_options, patience, **given):
    """Train a language model; report bits per character / perplexity beside n-gram models."""
    from .tasks.lm import LanguageModeler, train_run

    if patience is not None:
        raise click.UsageError("--patience: a language model trains for --epochs or --minutes")
    modeler = LanguageModeler(**_settings(given, rnn_options))
    click.echo(train_run(modeler, data, out, overwrite=overwrite, resume=resume))


@lm.command("evaluate")
@click.option("--run", required=True, help="Run directory written by `lm train`.")
@click.option("--data", required=True, help="A text file to score.")
@click.option("--held-out", is_flag=True, help="Score only the part training held out.")
def lm_evaluate(run, data, held_out):
    """Score a run on DATA; print and store bits per character and perplexity."""
    from .tasks.lm import evaluate_run

    click.echo(evaluate_run(run, data, held_out=held_out))


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
    from .tasks.lm import LanguageModeler

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


@translate.command("train")
@click.option("--data", required=True, help="TSV of source<TAB>target lines (may be gzipped).")
@click.option("--test", help="Test pairs (TSV); default: a fixed random 5 % of --data.")
@click.option("--tokenizer", type=click.Choice(["bpe", "word"]), help="Default bpe.")
@click.option("--vocab-size", type=int, help="BPE subwords per side (default 8000).")
@click.option("--max-length", type=int, help="Longest side in tokens kept (default 80).")
@click.option("--attention", type=click.Choice(["additive", "dot", "general", "none"]))
@click.option("--input-feeding/--no-input-feeding", default=None)
@click.option("--bridge", type=click.Choice(["linear", "zeros"]))
@click.option("--sampling", type=float, help="Scheduled-sampling probability.")
@click.option("--min-freq", type=int, help="Rarer words become <unk> (word tokenizer).")
@click.option("--beam-size", type=int, help="Beam reported beside greedy (default 5).")
@click.option("--length-penalty", type=float, help="Beam score = log p / length^this.")
@click.option("--minutes", type=float, help="Time limit of training, validation included.")
@_training_options
def translate_train(data, test, out, overwrite, resume, rnn_options, **given):
    """Train a translator; report BLEU/chrF of greedy and beam search beside copying."""
    from .tasks.translate import Translator, train_run

    translator = Translator(**_settings(given, rnn_options))
    click.echo(train_run(translator, data, out, test=test, overwrite=overwrite, resume=resume))


@translate.command("evaluate")
@click.option("--run", required=True, help="Run directory written by `translate train`.")
@click.option("--data", required=True, help="TSV of source<TAB>reference lines.")
@click.option("--beam", type=int, help="Beam size (default: the run's; 1 = greedy only).")
def translate_evaluate(run, data, beam):
    """Score a run on DATA; print and store BLEU and chrF, and the copy baseline's."""
    from .tasks.translate import evaluate_run

    click.echo(evaluate_run(run, data, beam_size=beam))


@translate.command("predict")
@click.option("--run", required=True, help="Run directory written by `translate train`.")
@click.argument("source", default="-")
@click.option("--beam", type=int, help="Beam size (default: the run's; 1 = greedy).")
@click.option("--attention-png", help="Write the first sentence's attention map here.")
def translate_predict(run, source, beam, attention_png):
    """Translate each line of SOURCE (a file, or - for stdin)."""
    from .tasks.translate import predict_lines

    click.echo(predict_lines(run, source, beam_size=beam, attention_png=attention_png))


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
    if text is None:
        return None
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise click.BadParameter(
            f"{text!r} must be integers separated by commas", param_hint=option
        ) from None


@main.command("bench-memory")
@click.option("--task", type=click.Choice(["adding", "copy", "smnist"]), default="adding")
@click.option(
    "--T",
    "lengths",
    help="Sequence lengths, comma-separated (default 100,200,400; copy: the delay; smnist: "
    "784, its only length).",
)
@click.option("--cells", default="rnn,lstm,gru", show_default=True, help="Cells to compare.")
@click.option("--out", default="runs/memory", show_default=True, help="Run directory to write.")
@click.option("--overwrite", is_flag=True, help="Replace an existing run directory.")
@click.option("--hidden-size", type=int, default=64, show_default=True)
@click.option(
    "--steps",
    "max_steps",
    type=int,
    default=2000,
    show_default=True,
    help="Optimizer steps per run.",
)
@click.option("--minutes", type=float, help="Also stop each run after this many minutes.")
@click.option("--batch-size", type=int, default=64, show_default=True)
@click.option("--lr", type=float, default=1e-3, show_default=True)
@click.option("--train-size", type=int, default=10_000, show_default=True)
@click.option("--test-size", type=int, default=1_000, show_default=True)
@click.option("--diagnose-every", type=int, default=250, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
def bench_memory(lengths, cells, out, overwrite, **settings):
    """Train each cell at each T on a long-dependency task; table, plots, gradient flow."""
    from .tasks.memory import bench_memory as run_bench
    from .tasks.memory import table_text

    cells = [c.strip() for c in cells.split(",") if c.strip()]
    rows = run_bench(out, cells=cells, lengths=_integers(lengths, "--T"), overwrite=overwrite,
                     progress=click.echo, **settings)  # fmt: skip
    click.echo(table_text(rows, settings["task"]))
    click.echo(f"Wrote {out}")
