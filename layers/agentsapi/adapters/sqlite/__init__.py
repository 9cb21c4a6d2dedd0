"""Embedded adapters for one machine (`make serve`, STORAGE=sqlite): SQLite and the file system under DATA_DIR."""
