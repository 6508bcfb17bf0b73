"""The PyQt6 dashboard (the tracing tab arrives with its own issue)."""
