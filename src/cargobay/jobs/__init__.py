"""The durable job queue (``queue``) and the periodic scheduler (``scheduler``); imports no service."""
