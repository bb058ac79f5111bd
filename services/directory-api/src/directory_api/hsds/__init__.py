"""HSDS import and export: readers -> mapping -> importer (+ report); export for the reverse."""
