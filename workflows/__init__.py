"""Workflows decide: the checklist engine, one file per workflow kind, the per-client child."""
