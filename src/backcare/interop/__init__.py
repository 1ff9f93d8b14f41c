"""Data leaving and entering Backcare: FHIR R4 export and import."""
