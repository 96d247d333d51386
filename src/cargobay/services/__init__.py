"""Use cases shared by the HTTP layers, the console and the CLI. No HTTP types here."""
