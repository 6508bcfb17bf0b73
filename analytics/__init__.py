"""agent-traces data layer: OpenCode readers, trace extraction, the DuckDB store and its queries, analysis,
export, settings, opening a session in a terminal, and the plain commands of the command line.

Plain Python: nothing under this package imports PyQt6 or `dashboard`, even inside a function
(tests/test_layering.py parses every module to keep it so).
"""
