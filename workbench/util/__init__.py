"""Small utilities every layer may use: running coroutines from sync code, offline defaults, project paths, memory."""
