"""Packaged experiment files (TOML)."""
