"""Signals the clinic sends so that apps above it (scheduling) can act without the clinic importing them."""

from __future__ import annotations

from django.dispatch import Signal

# Sent inside the transaction that recorded a treatment session (so a receiver's writes commit or roll back with
# it), with sender=TreatmentSession and the keyword arguments session (the TreatmentSession, already saved), staff
# (the StaffMember who recorded it) and request (the HTTP request, or None). Scheduling links the session to the
# appointment it was written for and completes that appointment.
session_recorded = Signal()

# Sent inside the transaction that ended a course (completed, referred or stopped: the client is discharged), with
# sender=Course and the keyword arguments course (the Course, already saved), staff (the StaffMember who ended it)
# and request (the HTTP request, or None). Billing closes the course's package by its unused-session rule.
course_ended = Signal()
