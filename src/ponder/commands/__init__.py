"""The pieces of the ``ponder`` command; :mod:`ponder.cli` puts them in one table.

- :mod:`~ponder.commands.console`: every line the CLI prints, without rich markup.
- :mod:`~ponder.commands.checks`: range checks on options, run before any work.
- :mod:`~ponder.commands.boundary`: the one error boundary (user error, internal error, log file).
- :mod:`~ponder.commands.study`: ``list``, ``show``, ``report`` and ``export``.
- :mod:`~ponder.commands.atlas`: ``init``.
- :mod:`~ponder.commands.theory`: ``theory meanfield|critical|phase|folklore``.

Nothing here imports torch, the catalog or the study package at module level, so that
``ponder --help`` and ``ponder list studies`` start at once.
"""
