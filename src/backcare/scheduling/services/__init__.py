"""Scheduling services: every write checks the rules, runs under the locking policy and is audited."""
