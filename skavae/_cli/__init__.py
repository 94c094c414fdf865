"""Implementation of the ``skavae`` sub-commands (the parser is in skavae.cli)."""
