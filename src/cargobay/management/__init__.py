"""The /containerregistries management API (IONOS-compatible) and the /auth/v1 bearer-token API."""
