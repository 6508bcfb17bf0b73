"""agent-traces data layer: OpenCode readers, trace extraction, the DuckDB store and its queries.

Plain Python: nothing under this package imports PyQt6.
"""
