"""Reusable dashboard pieces: the tree and its delegates, the detail pane, the filter bar."""
