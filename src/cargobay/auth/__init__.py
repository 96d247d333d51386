"""Who is calling and what they may do: users and contracts, registry tokens, JWTs, scopes, allowlists."""
