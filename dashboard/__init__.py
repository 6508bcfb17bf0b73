"""The PyQt6 dashboard: the window with its Traces, Flow and Metrics tabs, and `cli`, the `agent-traces` entry.

It reads through `analytics` (queries, settings, `analytics.terminal`) and never the other way round.
"""
