"""FHIR R4 (4.0.1) mapping of the clinic's records, validated with fhirclient's R4 models."""

MAX_BUNDLE_BYTES = 4 * 1024 * 1024  # here, not in `validation`, so the import page loads without fhirclient
