"""Data: reading and validating tables, time-series windows and scalers, tokenizers and
vocabularies, readers for CSV/TSV, CoNLL, .ts, idx and NumPy files, batching by length, and
bundled datasets.

Import the submodules you need (``rnnkit.data.timeseries``, ``rnnkit.data.tables``,
``rnnkit.data.text``, ``rnnkit.data.readers``, ``rnnkit.data.batching``); this
package imports nothing heavy by itself, so ``import rnnkit`` stays light.
"""
