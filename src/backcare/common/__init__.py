"""The shared layer below the clinic, scheduling, API and interop apps: what they all need and none of them owns.

It imports nothing from them; they call into it (and register hooks with it, see `outbox.register_check`)."""
