"""FHIR R4 (4.0.1) mapping of the clinic's records, validated with fhirclient's R4 models."""
