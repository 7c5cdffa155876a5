"""pointly.cli: the ``pointly`` command."""
