"""The project version, written into every model file and report."""

__version__ = "0.1.0"
