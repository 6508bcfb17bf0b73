"""Reading OpenAI Codex CLI histories (rollout files) into the records the loader builds traces from."""

from analytics.codex.reader import CodexReader, default_sessions_dir, open_codex_source

__all__ = ["CodexReader", "default_sessions_dir", "open_codex_source"]
