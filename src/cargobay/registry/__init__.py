"""The /v2/ registry API (OCI distribution-spec 1.1) and the /auth/token service: HTTP only."""
