"""The estimator contract, checked the same way on every task: scikit-learn's clone and
parameters, fit returning self, a run directory that loads back to identical predictions,
and bad input refused the same way (unknown setting, another task's run, a missing file,
--resume with changed settings)."""

import json
import re
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone

from rnnkit.data.datasets import stocks_path
from rnnkit.data.scenes import make_scenes
from rnnkit.tasks import all_tasks, rundir
from rnnkit.tasks.caption import Captioner
from rnnkit.tasks.classify import Classifier
from rnnkit.tasks.estimator import Estimator
from rnnkit.tasks.forecast import Forecaster
from rnnkit.tasks.lm import LanguageModeler
from rnnkit.tasks.memory import MemoryBenchmark
from rnnkit.tasks.music import Composer
from rnnkit.tasks.settings import TRAINING
from rnnkit.tasks.tag import Tagger
from rnnkit.tasks.transcribe import Transcriber
from rnnkit.tasks.translate import Translator

# Held-out sentences have words training never saw; the translator says how many.
pytestmark = pytest.mark.filterwarnings("ignore:.*not in the vocabulary:UserWarning")
DATA = Path(__file__).parent / "data"
QUIET = {"progress": "none"}


def _lines(path: Path, count: int) -> str:
    return "\n".join(path.read_text().splitlines()[:count]) + "\n"


def _sentences(path: Path, count: int) -> str:
    return "\n\n".join(path.read_text().split("\n\n")[:count]) + "\n"


@dataclass
class Case:
    """One task: its estimator, small settings, how to make its data and what to predict."""

    cls: type
    settings: dict
    data: object = None  # callable(folder) -> the data train_run reads, or None
    inputs: object = None  # callable() -> what predict takes
    predict: dict = field(default_factory=dict)  # predict's keyword arguments


CASES = {
    "forecast": Case(
        Forecaster,
        {"target": "Close", "date_col": "Date", "where": {"Ticker": "GOOG"},
         "test_start": "2012-01-01", "lookback": 10, "hidden_size": 4, "num_layers": 1,
         "epochs": 1, **QUIET},
        lambda folder: stocks_path(),
        lambda: pd.read_csv(stocks_path()).query("Ticker == 'GOOG'").iloc[-40:],
    ),
    "classify": Case(
        Classifier,
        {"hidden_size": 4, "embedding_dim": 4, "epochs": 1, "val": 0.1, **QUIET},
        lambda folder: _write(folder / "mr.tsv", _lines(DATA / "mr_sample.tsv", 201)),
        lambda: ["a gorgeous, witty film", "tedious and overlong"],
    ),
    "tag": Case(
        Tagger,
        {"hidden_size": 4, "embedding_dim": 4, "char_embedding_dim": 4, "char_hidden_size": 4,
         "epochs": 1, **QUIET},
        lambda folder: _write(folder / "ner.bio", _sentences(DATA / "wnut16_sample.bio", 120)),
        lambda: [["Obama", "visited", "Paris"], ["hello", "world"]],
    ),
    "lm": Case(
        LanguageModeler,
        {"hidden_size": 8, "embedding_dim": 4, "batch_size": 4, "bptt": 16, "eval_every": 2,
         "steps": 4, **QUIET},
        lambda folder: _write(
            folder / "text.txt", (DATA / "shakespeare_sample.txt").read_text()[:6000]
        ),
        lambda: "ROMEO.\nWhat",
    ),
    "translate": Case(
        Translator,
        {"tokenizer": "word", "min_freq": 1, "hidden_size": 4, "embedding_dim": 4,
         "beam_size": 2, "max_length": 40, "epochs": 1, **QUIET},
        lambda folder: _write(folder / "pairs.tsv", _lines(DATA / "bible_en_es_sample.tsv", 150)),
        lambda: ["And God said, Let there be light.", "In the beginning"],
    ),
    "music": Case(
        Composer,
        {"hidden_size": 4, "num_layers": 1, "nade_size": 4, "transpose": "none", "epochs": 1,
         **QUIET},
        lambda folder: _chorales(folder / "scores"),
        lambda: str(_chorale_files()[0]),
    ),
    "transcribe": Case(
        Transcriber,
        {"hidden_size": 4, "num_layers": 1, "epochs": 1, "val": 0.25, **QUIET},
        lambda folder: str(DATA / "spoken_digits" / "train.tsv"),
        lambda: [DATA / "spoken_digits" / "wav" / "test-00000.wav"],
    ),
    "caption": Case(
        Captioner,
        {"side": 16, "channels": (4, 8), "hidden_size": 8, "embedding_dim": 4, "epochs": 1,
         "beam_size": 2, **QUIET},
        lambda folder: make_scenes(folder / "scenes", 30, side=16, overwrite=True),
        lambda: np.random.default_rng(0).integers(0, 256, (2, 16, 16, 3), dtype=np.uint8),
    ),
    "bench-memory": Case(
        MemoryBenchmark,
        {"cells": ["rnn"], "lengths": [5], "steps": 3, "train_size": 32, "test_size": 16,
         "hidden_size": 4, "diagnose_every": None, **QUIET},
        None,
        lambda: torch.rand(3, 5, 2),
        {"run": "rnn_T5"},
    ),
}  # fmt: skip


def _chorale_files() -> list[Path]:
    """Ten chorales: eight of the training part, one of validation and one of the test (the
    parts are fixed by the name, see ``rnnkit.data.music.split_of``)."""
    import music21

    from rnnkit.data.music import split_of

    paths = [Path(p) for p in music21.corpus.getComposer("bach") if p.suffix == ".mxl"]
    wanted = {"train": 8, "validation": 1, "test": 1}
    chosen = []
    for path in paths:
        if wanted[split_of(path.stem)]:
            wanted[split_of(path.stem)] -= 1
            chosen.append(path)
    return chosen


def _chorales(folder: Path) -> Path:
    """A folder of chorales, as a user's own scores would be."""
    folder.mkdir(exist_ok=True)
    for path in _chorale_files():
        shutil.copy(path, folder / path.name)
    return folder


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _data(case: Case, folder: Path):
    return case.data(folder) if case.data else None


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Every task trained once into a run directory: {task: (fitted estimator, run)}."""
    trained = {}
    for name, case in CASES.items():
        folder = tmp_path_factory.mktemp(name.replace("-", "_"))
        estimator = case.cls(**case.settings)
        report = rundir.train_run(estimator, _data(case, folder), folder / "run")
        assert "Run directory" in report
        trained[name] = (estimator, folder / "run")
    return trained


def test_every_task_rnnkit_ships_is_checked_here():
    shipped = {name for name, cls in all_tasks().items() if cls.__module__.startswith("rnnkit.")}
    assert shipped == set(CASES), "add a Case for each task to CASES"


def _same(a, b) -> bool:
    if isinstance(a, list) and a and not isinstance(a[0], str | int | float):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    if isinstance(a, pd.DataFrame):
        return a.equals(b)
    if isinstance(a, np.ndarray):
        return np.array_equal(a, b)
    return a == b


@pytest.mark.parametrize("task", CASES)
def test_settings_round_trip_through_get_params_and_sklearn_clone(task):
    case = CASES[task]
    estimator = case.cls(**case.settings)
    params = estimator.get_params()
    assert list(params) == case.cls.setting_names()
    for name, value in case.settings.items():
        assert params[name] is value  # stored as given, not copied or converted
    copy = clone(estimator)
    assert type(copy) is case.cls and copy is not estimator
    assert copy.get_params() == params
    assert case.cls(**params).get_params() == params
    assert estimator.set_params(seed=7) is estimator and estimator.seed == 7
    assert "seed=7" in repr(estimator)


@pytest.mark.parametrize("task", CASES)
def test_constructors_are_keyword_only_and_share_the_training_settings(task):
    cls = CASES[task].cls
    import inspect

    parameters = list(inspect.signature(cls).parameters.values())
    assert all(p.kind is p.KEYWORD_ONLY for p in parameters)
    assert set(cls.training) <= set(TRAINING)
    assert [p.name for p in parameters][-len(cls.training) :] == list(cls.training)
    assert issubclass(cls, Estimator)


@pytest.mark.parametrize("task", CASES)
def test_fit_returns_self_and_the_fitted_state_ends_in_underscore(task, runs, tmp_path):
    case = CASES[task]
    fitted, _ = runs[task]
    assert {"model_", "metrics_", "history_", "steps_"} <= set(vars(fitted))
    unfitted = clone(fitted)
    assert not hasattr(unfitted, "model_")
    with pytest.raises(RuntimeError, match="is not fitted"):
        unfitted.score(unfitted.read(_data(case, tmp_path)))
    data = unfitted.read(_data(case, tmp_path))
    assert unfitted.fit(data) is unfitted


@pytest.mark.parametrize("task", CASES)
def test_score_gives_the_model_beside_its_baselines(task, runs, tmp_path):
    case = CASES[task]
    fitted, _ = runs[task]
    scores = fitted.score(fitted.read(_data(case, tmp_path)))
    assert next(iter(scores)) == "model" and len(scores) >= 2
    assert all(isinstance(entry, dict) and entry for entry in scores.values())
    assert set(scores) == set(fitted.metrics_.get("test", fitted.metrics_.get("validation")))


@pytest.mark.parametrize("task", CASES)
def test_a_saved_run_loads_back_to_identical_predictions(task, runs, tmp_path):
    case = CASES[task]
    fitted, run = runs[task]
    names = {p.name for p in run.iterdir()}
    assert {"config.json", "model.safetensors", "data_state.json", "metrics.json"} <= names
    assert {"history.csv", "steps.csv", "report.html"} <= names
    assert not any(name.endswith((".partial", ".tmp")) for name in names)
    loaded = case.cls.load(run)
    assert rundir.as_json(loaded.get_params()) == rundir.as_json(fitted.get_params())
    for name, default in case.cls.defaults().items():  # JSON's lists back as the tuples
        if isinstance(default, tuple) and name not in case.settings:
            assert loaded.get_params()[name] == default
    inputs = case.inputs()
    assert _same(loaded.predict(inputs, **case.predict), fitted.predict(inputs, **case.predict))
    # And save() of a loaded estimator (or of a fitted one) writes the same layout.
    if task != "forecast":  # a loaded forecaster keeps no training data to save
        again = loaded.save(tmp_path / "again")
        drawn = {"learning_curves.png", "diagnostics", "contact_sheet.png"}  # of the fit's data
        assert {p.name for p in again.iterdir()} >= names - drawn


# --- bad input, refused the same way by every task ----------------------------------------


@pytest.mark.parametrize("task", CASES)
def test_an_unknown_setting_is_refused_with_its_name(task):
    cls = CASES[task].cls
    with pytest.raises(TypeError, match=f"'lerning_rate' is not a setting of {cls.__name__}"):
        cls(lerning_rate=0.1)
    with pytest.raises(TypeError, match=r"did you mean '(epochs|steps)'"):
        cls(**{"epoch" if "epochs" in cls.training else "step": 3})
    with pytest.raises(TypeError, match="'bogus' is not a setting"):
        cls().set_params(bogus=1)


@pytest.mark.parametrize("task", CASES)
def test_a_run_of_another_task_is_refused(task, runs):
    others = [name for name in CASES if name != task]
    _, run = runs[others[0]]
    cls = CASES[task].cls
    with pytest.raises(ValueError, match=f"holds a '{others[0]}' run, not a '{task}' run"):
        cls.load(run)


@pytest.mark.parametrize("task", CASES)
@pytest.mark.parametrize("missing", ["model.safetensors", "data_state.json", "config.json"])
def test_a_run_with_a_missing_file_is_refused(task, missing, runs, tmp_path):
    _, run = runs[task]
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    (copy / missing).unlink()
    expected = "is not a finished run directory" if missing == "config.json" else "incomplete"
    with pytest.raises((ValueError, FileNotFoundError), match=f"{expected}.*"):
        CASES[task].cls.load(copy)


@pytest.mark.parametrize("task", CASES)
def test_resume_with_changed_settings_is_refused(task, tmp_path, monkeypatch):
    case = CASES[task]
    out = tmp_path / "run"

    def killed(self, data, **places):  # training dies after its first checkpoint
        Path(places["checkpoint_dir"]).mkdir(parents=True)
        raise KeyboardInterrupt

    monkeypatch.setattr(case.cls, "fit", killed)
    with pytest.raises(KeyboardInterrupt):
        rundir.train_run(case.cls(**case.settings), _data(case, tmp_path), out)
    assert rundir.partial_path(out).is_dir() and not out.exists()
    changed = case.cls(**case.settings).set_params(seed=1)
    with pytest.raises(ValueError, match=r"--resume continues a run .*seed: 0 -> 1"):
        rundir.train_run(changed, _data(case, tmp_path), out, resume=True)
    assert not out.exists()


@pytest.mark.parametrize("task", CASES)
def test_a_run_killed_after_a_checkpoint_resumes_to_the_uninterrupted_run(task, runs, tmp_path,
                                                                          monkeypatch):  # fmt: skip
    from rnnkit.training import checkpoint

    case = CASES[task]
    save = checkpoint.save
    killed = []

    def save_then_die(directory, epoch, *args):  # the first checkpoint written, then a kill
        save(directory, epoch, *args)
        if not killed:
            killed.append(epoch)
            raise KeyboardInterrupt

    out = tmp_path / "run"
    with monkeypatch.context() as patch:
        patch.setattr(checkpoint, "save", save_then_die)
        with pytest.raises(KeyboardInterrupt):
            rundir.train_run(case.cls(**case.settings), _data(case, tmp_path), out)
    assert killed and not out.exists()
    resumed = case.cls(**case.settings)
    rundir.train_run(resumed, _data(case, tmp_path), out, resume=True)
    fitted, _ = runs[task]
    inputs = case.inputs()
    assert _same(resumed.predict(inputs, **case.predict), fitted.predict(inputs, **case.predict))
    assert not rundir.partial_path(out).exists()


def test_a_failed_fit_leaves_no_fitted_state_behind(runs, tmp_path):
    fitted, _ = runs["classify"]
    refit = clone(fitted)
    refit.fit(["good fun", "bad"] * 10, ["p", "n"] * 10)
    with pytest.raises(ValueError, match="has no tokens"):
        refit.fit(["good fun", "   ", "bad"] * 10, ["x", "y", "z"] * 10)
    assert not hasattr(refit, "model_")  # never the new labels beside the old model
    with pytest.raises(RuntimeError, match="is not fitted"):
        refit.predict(["good fun"])


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"patience": 0}, "patience=0 must be an integer >= 1 or None"),
        ({"steps": 0}, "steps=0 must be an integer >= 1 or None"),
        ({"minutes": 0}, "minutes=0 must be a finite number > 0 or None"),
        ({"seed": -1}, "seed=-1 must be an integer in [0, 4294967295]"),
        ({"lr": "fast"}, "lr='fast' must be a finite number > 0"),
        ({"diagnose_every": 0}, "diagnose_every=0 must be an integer >= 1 or None"),
        ({"optimizer": "adagrad"}, "optimizer='adagrad' is not one of"),
    ],
)
def test_bad_training_settings_are_named_as_the_user_wrote_them(settings, message, tmp_path):
    case = CASES["tag"]
    with pytest.raises(ValueError, match=re.escape(message)):
        rundir.train_run(case.cls(**case.settings | settings), _data(case, tmp_path),
                         tmp_path / "run")  # fmt: skip
    assert not any(p.name.startswith("run") for p in tmp_path.iterdir())


@pytest.mark.parametrize(
    ("task", "old_keys"),
    [
        ("classify", {"vocabulary": "vocab", "fixed_length": "steps"}),
        ("tag", {"labels": "tags", "vocabulary": "words", "char_vocabulary": "chars"}),
        ("lm", {"unigram_counts": None}),  # the last release kept no baseline
    ],
)
def test_a_run_of_the_last_release_loads(task, old_keys, runs, tmp_path):
    fitted, run = runs[task]
    old = tmp_path / "old"
    shutil.copytree(run, old)
    state = rundir.read_json(old / "data_state.json")
    for new, previous in old_keys.items():
        value = state.pop(new)
        if previous:
            state[previous] = value
    rundir.write_json(old / "data_state.json", state)
    inputs = CASES[task].inputs()
    assert _same(CASES[task].cls.load(old).predict(inputs), fitted.predict(inputs))


def test_a_run_that_cannot_be_read_is_named(runs, tmp_path):
    _, run = runs["classify"]
    broken = tmp_path / "broken"
    shutil.copytree(run, broken)
    rundir.write_json(broken / "data_state.json", {"kind": "text"})
    with pytest.raises(ValueError, match=r"does not hold a 'classify' run that rnnkit .* reads"):
        Classifier.load(broken)


@pytest.mark.parametrize("task", [name for name in CASES if name != "bench-memory"])
def test_the_command_line_refuses_another_tasks_run_and_a_broken_one(task, runs, tmp_path):
    from click.testing import CliRunner

    from rnnkit.cli import main

    data = _data(CASES[task], tmp_path)
    other = "classify" if task != "classify" else "tag"
    result = CliRunner().invoke(main, [task, "evaluate", "--run", str(runs[other][1]),
                                       "--data", str(data)])  # fmt: skip
    assert result.exit_code == 1
    assert f"holds a '{other}' run, not a '{task}' run" in result.output
    broken = tmp_path / "broken"
    shutil.copytree(runs[task][1], broken)
    (broken / "model.safetensors").unlink()
    result = CliRunner().invoke(main, [task, "evaluate", "--run", str(broken), "--data", str(data)])
    assert result.exit_code == 1 and "incomplete: model.safetensors is missing" in result.output
    assert "Traceback" not in result.output


def test_old_names_keep_working_for_one_release_with_a_warning(runs):
    with pytest.warns(DeprecationWarning, match="rnn_options"):
        forecaster = Forecaster(cell_options={"layer_norm": True})
    assert forecaster.rnn_options == {"layer_norm": True}
    with pytest.warns(DeprecationWarning, match="target="):
        assert Forecaster("Open").target == "Open"
    fitted, _ = runs["forecast"]
    with pytest.warns(DeprecationWarning, match="Forecaster.score"):
        assert fitted.evaluate() == fitted.score()
    classifier, _ = runs["classify"]
    with pytest.warns(DeprecationWarning, match="vocabulary_"):
        assert classifier.vocab_ is classifier.vocabulary_
    translator, _ = runs["translate"]
    with pytest.warns(DeprecationWarning, match="target_vocabulary_"):
        assert translator.vocabularies_[1] is translator.target_vocabulary_
    tagger, _ = runs["tag"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert tagger.labels_ is vars(tagger)["labels_"]  # the new names do not warn
    with pytest.raises(AttributeError, match="no attribute 'nothing_'"):
        tagger.nothing_  # noqa: B018


EXPORTED = {
    "forecast": 1,
    "classify": 1,
    "tag": 1,
    "lm": 1,
    "transcribe": 1,
    "translate": 2,
    "music": 2,
    "caption": 2,
}  # graphs each
NOT_EXPORTED = {"bench-memory"}  # its models are the benchmark's, not one to ship


@pytest.mark.parametrize("format", ["onnx", "pt2"])
@pytest.mark.parametrize("task", sorted(EXPORTED))
def test_an_exported_model_equals_the_model_at_sizes_it_was_not_traced_with(
    task, format, runs, tmp_path
):
    pytest.importorskip("onnxruntime")
    fitted, run = runs[task]
    out = CASES[task].cls.load(run).export(tmp_path / "export", format=format)
    described = json.loads((out / "export.json").read_text())
    assert described["task"] == task and described["format"] == format
    assert len(described["graphs"]) == EXPORTED[task]
    for name, graph in described["graphs"].items():
        assert (out / graph["file"]).is_file()
        assert graph["check"]["checked"], graph
        assert graph["check"]["max_scaled_diff"] < 1e-5, (name, graph["check"])
    assert described["data_state"] == json.loads(json.dumps(rundir.as_json(fitted._data_state())))


def test_every_task_is_exported_or_says_why_not(runs, tmp_path):
    from rnnkit.export import ExportError

    assert set(EXPORTED) | NOT_EXPORTED == set(CASES)
    for task in NOT_EXPORTED:
        with pytest.raises(ExportError, match="no model that maps tensors"):
            runs[task][0].export(tmp_path / task)
