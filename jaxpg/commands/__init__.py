"""Subcommands of the ``jaxpg`` CLI, one module each (see ``jaxpg.cli``)."""
