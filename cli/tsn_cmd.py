"""Placeholder command module: its commands are being written (see the open issues)."""


def register(app, data_app) -> None:
    pass
