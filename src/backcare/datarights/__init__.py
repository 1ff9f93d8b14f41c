"""Data rights (Django app "datarights"): a client's full export, erasure requests and the retention of clinical
records, and the owner's de-identified research export. It sits above clinic, scheduling and interop, because a
client's data lives in all of them; see docs/data-rights.md."""
