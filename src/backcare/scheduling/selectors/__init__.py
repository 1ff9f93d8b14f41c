"""Reads of scheduling shared by its pages and the API (see `calendar`)."""
