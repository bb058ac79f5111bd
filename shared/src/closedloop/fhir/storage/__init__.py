"""The FHIR store: tables, versioned writes with their index rows, reads and history."""
