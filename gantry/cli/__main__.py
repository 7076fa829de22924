"""``python -m gantry.cli``."""

from gantry.cli import app

app()
