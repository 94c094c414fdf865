"""Implementation of :mod:`skavae.evaluation` (import from there)."""
