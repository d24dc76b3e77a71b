"""A run directory as one HTML page that people open in a browser: ``report.html``.

One self-contained file: no script, no stylesheet or font from elsewhere, every picture
inlined as a data URI, so it opens offline, mails as an attachment and prints. It says what
was trained on what data (the sizes of the parts, where the data came from), the scores of
the model beside every baseline with the best of each column marked, how training went (the
learning curves, the epochs, the best one kept), the task's own pictures, every setting, and
what the run warned about. Narrow screens scroll the tables sideways; print drops nothing.

``write_report(run)`` reads only the run directory's files (``rnnkit.tasks.rundir``), so a
run of any task, or of an older release, gets its page; ``rnnkit report`` and every
``train`` call it.
"""

from __future__ import annotations

import base64
import html
import json
from numbers import Real
from pathlib import Path

# Metrics where less is better; the others (accuracy, F1, BLEU, ...) are better higher.
LOWER_IS_BETTER = {
    "rmse", "mae", "mape", "smape", "mase", "cer", "wer", "loss", "nll", "nll_per_frame",
    "nll_per_quarter", "perplexity", "bits_per_char", "bits_per_token", "cross_entropy",
    "error", "error_rate", "brier",
}  # fmt: skip
STYLE = """
body { font: 16px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0;
       color: #1d1d1f; background: #fff; }
main { max-width: 60rem; margin: 0 auto; padding: 1rem; }
h1 { font-size: 1.5rem; margin: 0.5rem 0; } h2 { font-size: 1.2rem; margin-top: 2rem; }
.meta { color: #555; margin: 0; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; margin: 0.5rem 0; }
th, td { padding: 0.25rem 0.6rem; border-bottom: 1px solid #ddd; text-align: left; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
td.best { font-weight: bold; background: #e8f5e9; }
tr.model th { color: #0b57d0; }
img { max-width: 100%; height: auto; }
figure { margin: 1rem 0; } figcaption { color: #555; font-size: 0.9rem; }
.warning { background: #fff8e1; border-left: 4px solid #f9a825; padding: 0.5rem; }
@media print { body { font-size: 11pt; } h2 { break-after: avoid; }
               figure, table { break-inside: avoid; } }
"""


def _read(path: Path, default):
    return json.loads(path.read_text()) if path.is_file() else default


def _number(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _is_score(value) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def better(metric: str) -> str:
    """ "lower" or "higher": which way ``metric`` improves."""
    name = metric.lower()
    lower = name in LOWER_IS_BETTER or name.endswith(("_loss", "_error", "_rmse", "_mae"))
    return "lower" if lower or name.startswith(("nll", "rmse", "mae")) else "higher"


def score_table(scores: dict) -> str:
    """``{"model": {metric: value}, "<baseline>": {...}}`` as a table, one row each, the best
    value of each metric's column marked (class ``best``, and "best" for screen readers)."""
    rows = {name: values for name, values in scores.items() if isinstance(values, dict)}
    metrics = []
    for values in rows.values():
        metrics += [m for m, v in values.items() if _is_score(v) and m not in metrics]
    best = {}
    for metric in metrics:
        column = [values[metric] for values in rows.values() if _is_score(values.get(metric))]
        if len(column) > 1:
            best[metric] = (min if better(metric) == "lower" else max)(column)
    head = "".join(
        f'<th scope="col">{html.escape(m)} <small>({better(m)} is better)</small></th>'
        for m in metrics
    )
    body = []
    for name, values in rows.items():
        cells = []
        for metric in metrics:
            value = values.get(metric)
            if not _is_score(value):
                cells.append("<td></td>")
                continue
            mark = best.get(metric) == value
            cells.append(
                f'<td class="number{" best" if mark else ""}" data-metric="{html.escape(metric)}"'
                f' data-value="{value!r}">{_number(value)}{" <small>best</small>" if mark else ""}'
                "</td>"
            )
        kind = "model" if name.startswith("model") else "baseline"
        body.append(
            f'<tr class="{kind}" data-name="{html.escape(name)}"><th scope="row">'
            f"{html.escape(name)}</th>{''.join(cells)}</tr>"
        )
    return (
        '<div class="scroll"><table id="scores"><thead><tr><th scope="col">model or baseline'
        f"</th>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"
    )


def _table(pairs, table_id: str) -> str:
    rows = "".join(
        f'<tr><th scope="row">{html.escape(str(k))}</th><td>{html.escape(_number(v))}</td></tr>'
        for k, v in pairs
    )
    return f'<div class="scroll"><table id="{table_id}"><tbody>{rows}</tbody></table></div>'


def _figure(path: Path, caption: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(caption)}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def render(run) -> str:
    """The page of the run directory ``run``, as HTML text."""
    run = Path(run)
    config = _read(run / "config.json", {})
    metrics = _read(run / "metrics.json", {})
    task = config.get("task", "?")
    data = metrics.get("data", {})
    parts = ["<h2>Data</h2>"]
    sizes = [(k, v) for k, v in data.items() if not isinstance(v, dict | list)]
    sizes += [(f"{part} data from", source) for part, source in metrics.get("sources", {}).items()]
    parts.append(_table(sizes, "data") if sizes else "<p>The run records no sizes.</p>")
    for part in ("test", "validation"):
        if isinstance(metrics.get(part), dict):
            parts += [f'<h2 id="scores-heading">Scores on the {part} part</h2>',
                      score_table(metrics[part])]  # fmt: skip
            break
    history = (
        (run / "history.csv").read_text().splitlines() if (run / "history.csv").is_file() else []
    )
    epochs = max(len(history) - 1, 0)
    best = config.get("best_epoch")
    kept = f", kept the best epoch, {best}" if best else ""
    parts += ["<h2>Training</h2>", f"<p>{epochs} epochs{kept}; "
              f"{_number(config.get('parameters', '?'))} parameters.</p>"]  # fmt: skip
    if (run / "learning_curves.png").is_file():
        parts.append(_figure(run / "learning_curves.png", "learning curves"))
    pictures = sorted(p for p in run.glob("*.png") if p.name != "learning_curves.png")
    pictures += sorted((run / "diagnostics").glob("*.png"))
    if pictures:
        parts.append("<h2>Pictures</h2>")
        parts += [_figure(p, p.stem.replace("_", " ")) for p in pictures]
    parts.append("<h2>Warnings</h2>")
    if "warnings" not in metrics:
        parts.append(
            "<p>Not recorded: <code>rnnkit … train</code> records the warnings a run shows; "
            "this run was saved from Python.</p>"
        )
    else:
        parts += [f'<p class="warning">{html.escape(w)}</p>' for w in metrics["warnings"]] or [
            "<p>The run warned about nothing.</p>"
        ]
    settings = config.get("settings", {})
    parts += ["<h2>Settings</h2>", _table(sorted(settings.items()), "settings")]
    # Written while the run is still NAME.partial: the page names the run it becomes.
    title = f"rnnkit {task} run: {run.resolve().name.removesuffix('.partial')}"
    meta = f"rnnkit {config.get('rnnkit', '?')} · torch {config.get('torch', '?')}"
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body><main>"
        f'<h1>{html.escape(title)}</h1><p class="meta">{html.escape(meta)}</p>'
        f"{''.join(parts)}</main></body></html>\n"
    )


def write_report(run, out=None) -> Path:
    """Write the page of ``run`` to ``out`` (default: ``run/report.html``)."""
    out = Path(out) if out is not None else Path(run) / "report.html"
    out.write_text(render(run), encoding="utf-8")
    return out
