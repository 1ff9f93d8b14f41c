"""The clinical core: intake, screening, planning and outcome scoring, with no web framework inside.

The command line, the clinic application, batch jobs and tests all call this package, so they share one truth.
Nothing here may import Django (a test enforces it).
"""
