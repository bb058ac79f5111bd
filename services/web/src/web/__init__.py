"""The people's side of Closed Loop: server-rendered pages (Jinja2 + htmx) over the FHIR APIs
and the auth service, reached over HTTP only."""
