"""How the API's two ways of authenticating appear in the OpenAPI schema (drf-spectacular extensions).

Loaded by GovernanceConfig.ready(). The two tokens are one requirement (both headers together, AND); the
browser session is the alternative (a cookie, with the CSRF header on writes).
"""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ServiceAndUserTokensScheme(OpenApiAuthenticationExtension):
    target_class = "governance.authentication.ServiceTokenAuthentication"
    name = ["serviceToken", "userToken"]

    def get_security_definition(self, auto_schema):
        return [
            {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "JWT",
                "description": "The calling service's JWT (EdDSA, ≤ 5 minutes), checked against the endpoint's "
                "allowed callers.",
            },
            {
                "type": "apiKey",
                "in": "header",
                "name": "X-User-Token",
                "description": "The access token of the person on whose authority the call is made.",
            },
        ]


class SessionScheme(OpenApiAuthenticationExtension):
    target_class = "governance.authentication.SessionAuthentication"
    name = "session"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "cookie",
            "name": "sessionid",
            "description": "A browser session; writes also need the X-CSRFToken header.",
        }
