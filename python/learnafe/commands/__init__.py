"""CLI sub-command modules; each defines ``register(subparsers)`` (see learnafe.cli)."""
