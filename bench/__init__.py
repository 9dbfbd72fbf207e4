"""Benchmarks: what a switch costs at scale, measured on the lab (`python -m bench`)."""
