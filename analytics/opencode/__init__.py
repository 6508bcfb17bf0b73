"""Readers for every OpenCode storage generation; `open_source` picks the right ones."""

from analytics.opencode.source import Source, default_data_dir, open_source

__all__ = ["Source", "default_data_dir", "open_source"]
