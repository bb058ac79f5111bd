"""How a CBO listing is written in FHIR here: the extension URLs and code systems that the HSDS
importer writes and the directory's search parameters read. One place, so both sides agree.

Where a published IG has an element for a fact (NDH, HSD IG, SDOHCC, FHIR core extensions) we
use it; the ``urn:closedloop:fhir:`` ones fill gaps those IGs leave (the HSD IG lists
eligibility and ages among its HSDS gaps).
"""

# --- extensions on HealthcareService -------------------------------------------------------
# When the listing was last verified (HSDS ``assured_date``): valueDate.
VERIFIED_EXTENSION = "urn:closedloop:fhir:verified-on"
# SDOHCC capacity status: sub-extensions ``capacityStatus`` (valueCode) and ``capacityNotes``.
CAPACITY_EXTENSION = (
    "http://hl7.org/fhir/us/sdoh-clinicalcare/StructureDefinition/"
    "SDOHCC-ExtensionHealthcareServiceCapacityStatus"
)
# Ages the service admits (HSDS ``minimum_age``/``maximum_age``): valueRange, ``low``/``high``
# in years (UCUM ``a``); a missing bound admits every age on that side.
AGE_RANGE_EXTENSION = "urn:closedloop:fhir:age-range"
# IANA time zone (valueCode, e.g. ``America/Chicago``) in which ``availableTime`` is read; on
# HealthcareService (the importer copies it from the service's location) and on Location.
TIMEZONE_EXTENSION = "http://hl7.org/fhir/StructureDefinition/timezone"
# How the service is delivered (NDH delivery-method): sub-extension ``type`` valueCode
# ``physical`` | ``virtual``. A virtual service is kept (and flagged) in place-based searches.
DELIVERY_METHOD_EXTENSION = (
    "http://hl7.org/fhir/us/ndh/StructureDefinition/base-ext-delivery-method"
)

# --- extensions on Location ------------------------------------------------------------------
# A service area's boundary: valueAttachment, contentType ``application/geo+json``, ``data``
# the base64 of a GeoJSON Polygon / MultiPolygon (or a Feature holding one).
BOUNDARY_EXTENSION = "http://hl7.org/fhir/StructureDefinition/location-boundary-geojson"

# A position the importer placed itself because the source had no coordinates, on
# ``Location.position.extension``: valueCode ``postal-code-centroid`` (the centroid of the
# address's US ZIP code, so ``near`` finds the site, to within a few km).
APPROXIMATE_POSITION_EXTENSION = "urn:closedloop:fhir:position-approximate"

# --- meta.tag ---------------------------------------------------------------------------------
# On a record the HSDS importer had to make up: code ``organization-stub`` (an Organization a
# service referenced but the export did not contain; named from the service).
HSDS_REPAIR_TAG_SYSTEM = "urn:closedloop:hsds:repair"

# --- code systems ----------------------------------------------------------------------------
SDOHCC_CATEGORY_SYSTEM = (
    "http://hl7.org/fhir/us/sdoh-clinicalcare/CodeSystem/SDOHCC-CodeSystemTemporaryCodes"
)
# serviceProvisionCode: free | disc | cost
PROVISION_SYSTEM = "http://terminology.hl7.org/CodeSystem/service-provision-conditions"
LANGUAGE_SYSTEM = "urn:ietf:bcp:47"
# Identifiers that keep an imported record's source and its id there: system
# ``urn:closedloop:hsds:<source>:<entity>``, value the source's id.
HSDS_IDENTIFIER_PREFIX = "urn:closedloop:hsds:"

# --- search results --------------------------------------------------------------------------
# Why a place search (``place=``) matched a service, on its Bundle entry's ``search``: valueCode
# ``nearby`` (a location within the distance; the location-distance extension gives how far),
# ``coverage-area`` (its coverage area contains the point) or ``virtual`` (delivered remotely).
MATCH_REASON_EXTENSION = "urn:closedloop:fhir:match-reason"
