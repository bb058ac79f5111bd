"""The audit trail: who read, searched, changed or was refused what, kept in each FHIR
service's own database and served read-only as FHIR ``AuditEvent`` to admins.

- ``tables``: two lean tables (one row per interaction, one per resource it touched), not FHIR
  resources: an AuditEvent stored through the FHIR engine would cost a dozen index rows per
  request, on the request's own time;
- ``trail``: records from the hook seam (``before_show``, ``after_commit``, and the refusals
  of the request's opening) into a bounded in-memory buffer that a background task writes in
  batches, so a read does not wait for its audit row;
- ``security``: the vocabulary of an authorization server's events (tokens issued and
  refused with their reason, sign-ins, administrators' changes) in the same tables;
- ``search``: ``GET /fhir/AuditEvent`` (date, agent, entity, entity-type, action, subtype,
  outcome, paging) and ``GET /fhir/AuditEvent/<id>``.
Never a resource body, nor a query string (a search's parameters may name a patient).
"""

__all__ = ["search", "security", "tables", "trail"]
