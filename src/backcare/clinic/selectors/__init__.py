"""Reads of the clinic shared by its pages and the API: each builds what a page shows in a bounded number of
queries (see `dashboard`)."""
