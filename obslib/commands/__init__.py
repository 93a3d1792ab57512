"""Thin CLI subcommand modules. Each module exposes ``register(subparsers, parent)``.

The list below is the order in ``obs --help``. A module owns its subcommands; the
job logic lives in obslib proper, never here.
"""

COMMAND_MODULES = [
    "obslib.commands.demo_cmd",
    "obslib.commands.weekly_cmd",
    "obslib.commands.webhook_cmd",
    "obslib.commands.latency_cmd",
    "obslib.commands.dashboard_cmd",
    "obslib.commands.ops_cmd",
    "obslib.commands.alerts_cmd",
]
