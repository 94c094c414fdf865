"""Implementation of :mod:`skavae.plotting` (import from there)."""
