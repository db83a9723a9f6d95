"""The shiftbench version: part of every cell's key and every record's provenance."""

__version__ = "0.1.0"
