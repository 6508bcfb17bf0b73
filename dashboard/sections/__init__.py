"""One QWidget per dashboard tab."""

from dashboard.sections.flow import FlowSection
from dashboard.sections.metrics import MetricsSection
from dashboard.sections.tracing import TracingSection

__all__ = ["FlowSection", "MetricsSection", "TracingSection"]
