"""Database access: engines, sessions and migrations."""
