"""The web console at /console/: server-rendered pages on the same services as the APIs."""
