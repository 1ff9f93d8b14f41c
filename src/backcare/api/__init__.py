"""The REST API (django-ninja) under /api/ and the FHIR endpoints under /fhir/."""
