"""One QWidget per dashboard tab."""

from dashboard.sections.tracing import TracingSection

__all__ = ["TracingSection"]
