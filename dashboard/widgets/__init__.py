"""Reusable dashboard pieces: the tree and its delegates, the detail pane, the filter bar, the flow view, the
agent chart and the settings dialog."""
