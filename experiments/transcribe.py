"""CTC recognisers on held-out voices and fonts: the README's transcription tables.

Each variant makes its data set if it is not there yet (``rnnkit transcribe make-data``:
spoken digits by espeak-ng, or printed lines of a text in this machine's fonts), trains a
``Transcriber`` on the training manifest (its validation part: whole voices or fonts held
out), saves the run directory, and scores the test manifest, whose voices or font families
training never met: CER and WER of greedy, beam and beam + LM decoding beside the baselines,
with the training time of both models.

    python experiments/transcribe.py speech            # about 15 minutes on 2 cores
    python experiments/transcribe.py image --text shakespeare_42works.txt.gz
    python experiments/transcribe.py --table

Data go to ``--data`` (default ``runs/transcribe-data``), runs and a JSON per variant to
``--out`` (default ``runs/transcribe``).
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import time
from pathlib import Path

from rnnkit import ctc
from rnnkit.tasks.transcribe import Transcriber, read_manifest

VARIANTS = {
    "speech": ("speech", {}),
    "speech-specaugment": ("speech", {"spec_augment": True}),
    "speech-gru": ("speech", {"cell": "gru"}),
    "image": ("image", {}),
}
SIZES = {"train": 3000, "test": 500}


def make_data(kind: str, folder: Path, text: str | None) -> Path:
    """The variant's data folder, made if it has no test manifest yet."""
    if not (folder / "test.tsv").is_file():
        if kind == "speech":
            from rnnkit.data.spoken_digits import make_spoken_digits

            make_spoken_digits(folder, **SIZES)
        else:
            from rnnkit.data.text_lines import make_text_lines

            make_text_lines(folder, text=text, **SIZES)
    return folder


def run(variant: str, data_root: Path, out: Path, text: str | None, epochs: int) -> dict:
    kind, settings = VARIANTS[variant]
    folder = make_data(kind, data_root / ("digits" if kind == "speech" else "lines"), text)
    started = time.perf_counter()
    recogniser = Transcriber(epochs=epochs, **settings).fit(folder / "train.tsv")
    seconds = time.perf_counter() - started
    recogniser.save(out / variant, overwrite=True)
    scores = recogniser.score(folder / "test.tsv")
    by_voice = breakdown(recogniser, folder / "test.tsv", kind)
    result = {
        "variant": variant,
        "settings": recogniser.get_params(),
        "train_utterances": recogniser.metrics_["data"]["train"],
        "validation": recogniser.metrics_["validation"],
        "test": scores,
        "fit_seconds": seconds,
        "model_seconds": recogniser.training_seconds_,
        "epochs": len(recogniser.history_),
        "best_epoch": recogniser.best_epoch_,
        "parameters": sum(p.numel() for p in recogniser.model_.parameters()),
        "test_by_voice": by_voice,
    }
    (out / f"{variant}.json").write_text(json.dumps(result, indent=1, default=str))
    print("\n".join(recogniser.table(scores)))
    return result


def breakdown(recogniser: Transcriber, manifest: Path, kind: str) -> dict:
    """Greedy CER of the test part by voice variant (speech: espeak-ng's variant, whatever
    the accent) or font family (images), worst first."""
    utterances = read_manifest(manifest)
    said = recogniser.predict(manifest, decoding="greedy")
    groups: dict[str, list[int]] = {}
    for index, utterance in enumerate(utterances):
        voice = utterance.speaker.split("+")[-1] if kind == "speech" else utterance.speaker
        groups.setdefault(voice, []).append(index)
    rates = {
        voice: ctc.cer([utterances[i].transcript for i in rows], [said[i] for i in rows])
        for voice, rows in groups.items()
    }
    return dict(sorted(rates.items(), key=lambda item: -item[1]))


def table(out: Path) -> None:
    rows = ["| variant | greedy CER / WER | beam | beam + LM | frame-wise MLP | most frequent | "
            "epochs (best) | s/epoch | fit |", "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for variant in VARIANTS:
        path = out / f"{variant}.json"
        if not path.is_file():
            continue
        r = json.loads(path.read_text())
        t = r["test"]

        def pair(name, t=t):
            return f"{100 * t[name]['cer']:.1f}% / {100 * t[name]['wer']:.1f}%"

        # The median epoch: the fit's wall time counts whatever else the machine ran.
        with open(out / variant / "history.csv") as handle:
            epoch = statistics.median(float(row["seconds"]) for row in csv.DictReader(handle))
        rows.append(
            f"| {variant} | {pair('model')} | {pair('model_beam')} | {pair('model_beam_lm')} | "
            f"{pair('framewise')} | {pair('most_frequent')} | {r['epochs']} ({r['best_epoch']}) "
            f"| {epoch:.0f} | {r['fit_seconds'] / 60:.0f} min |"
        )
    print("\n".join(rows))
    for variant in VARIANTS:
        path = out / f"{variant}.json"
        if path.is_file():
            voices = json.loads(path.read_text()).get("test_by_voice", {})
            shown = ", ".join(f"{v} {100 * r:.1f}%" for v, r in voices.items())
            print(f"{variant}, greedy CER by test voice or font: {shown}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variant", nargs="?", choices=sorted(VARIANTS))
    parser.add_argument("--table", action="store_true", help="Print the results table.")
    parser.add_argument("--data", type=Path, default=Path("runs/transcribe-data"))
    parser.add_argument("--out", type=Path, default=Path("runs/transcribe"))
    parser.add_argument("--text", help="Text the image lines are taken from (default: the Zen).")
    parser.add_argument("--epochs", type=int, default=40)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.variant:
        run(args.variant, args.data, args.out, args.text, args.epochs)
    if args.table or not args.variant:
        table(args.out)


if __name__ == "__main__":
    main()
