"""One QWidget per dashboard tab."""

from dashboard.sections.compare import CompareSection
from dashboard.sections.flow import FlowSection
from dashboard.sections.metrics import MetricsSection
from dashboard.sections.tracing import TracingSection

__all__ = ["CompareSection", "FlowSection", "MetricsSection", "TracingSection"]
