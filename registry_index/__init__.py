"""registry-index: a static, git-backed kindo image registry."""

__version__ = "0.1.0"
