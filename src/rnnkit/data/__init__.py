"""Data: reading and validating tables, time-series windows and scalers, bundled datasets.

Import the submodules you need (``rnnkit.data.timeseries``, ``rnnkit.data.tables``); this
package imports nothing heavy by itself, so ``import rnnkit`` stays light.
"""
