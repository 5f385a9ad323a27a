"""Readers pick the answer span out of retrieved passages."""
