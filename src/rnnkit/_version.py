"""rnnkit's version, at the bottom of the package: anything may import it, and it imports
nothing. ``rnnkit.__version__`` re-exports it."""

__version__ = "0.1.0"
