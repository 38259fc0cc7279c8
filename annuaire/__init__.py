"""National health directory for MSSanté secure messaging."""

__version__ = "0.1.0"
