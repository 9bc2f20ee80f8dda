"""The archbench harness: measures any architecture of the registry the same way."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("archbench")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"
