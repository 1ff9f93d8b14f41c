"""Django's PostgreSQL backend for the test cluster, with one change: the test database can always be dropped.

A thread or server process a test started may still hold a connection when the run ends (PostgreSQL then refuses
`DROP DATABASE test_backcare`); those sessions are ended first. Everything else is Django's backend.
"""
