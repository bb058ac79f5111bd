"""FHIR search: parameter definitions, a compiled FHIRPath subset and index-row extraction."""
