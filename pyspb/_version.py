"""The installed pyspb version (one home, imported by the package and its provenance attrs)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("pyspb")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
