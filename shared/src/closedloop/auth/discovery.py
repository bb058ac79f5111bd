"""What a FHIR base tells clients about its authorization: the SMART configuration document
(``/fhir/.well-known/smart-configuration``) and the CapabilityStatement's ``rest.security``,
both pointing to the authorization server (services/auth)."""

from __future__ import annotations

from typing import Any

OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
SERVICE_SYSTEM = "http://terminology.hl7.org/CodeSystem/restful-security-service"


def smart_configuration(issuer: str, token_url: str, jwks_url: str) -> dict[str, Any]:
    """SMART App Launch 2.x well-known configuration for Backend Services clients."""
    return {
        "issuer": issuer,
        "jwks_uri": jwks_url,
        "token_endpoint": token_url,
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
        "scopes_supported": ["system/*.cruds", "system/*.rs"],
        "response_types_supported": ["token"],
        "capabilities": ["client-confidential-asymmetric", "permission-v2", "permission-v1"],
        "code_challenge_methods_supported": ["S256"],
    }


def capability_security(configuration: dict[str, Any]) -> dict[str, Any]:
    """``CapabilityStatement.rest.security``: SMART-on-FHIR, with the oauth-uris extension."""
    return {
        "cors": False,
        "service": [
            {
                "coding": [{"system": SERVICE_SYSTEM, "code": "SMART-on-FHIR"}],
                "text": "OAuth2 using SMART-on-FHIR profile (see http://docs.smarthealthit.org)",
            }
        ],
        "description": "Bearer access tokens from the SMART authorization server; SMART v2 "
        "(and v1) system scopes are enforced per interaction",
        "extension": [
            {
                "url": OAUTH_URIS,
                "extension": [
                    {"url": "token", "valueUri": configuration["token_endpoint"]},
                ],
            }
        ],
    }
