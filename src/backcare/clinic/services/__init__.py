"""Services own every write to the clinic's records; each one checks the rules, writes, and records the audit event.

Views call these and show `django.core.exceptions.ValidationError` messages next to the named fields.
"""
