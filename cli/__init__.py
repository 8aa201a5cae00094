"""The ``featcache`` command line (typer + rich)."""
