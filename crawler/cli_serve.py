"""Commands of the `crawler` CLI kept in their own module (registered by crawler/cli.py)."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
