"""Helpers for the test suite that are not tests themselves (a throwaway PostgreSQL cluster)."""
