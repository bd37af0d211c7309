"""The empathy evaluation suite (not built yet)."""
