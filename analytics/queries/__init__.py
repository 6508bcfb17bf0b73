"""Named, parameterized queries over the trace store."""
