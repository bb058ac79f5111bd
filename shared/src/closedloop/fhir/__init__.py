"""The FHIR engine: storage, search and REST, shared by every service."""
