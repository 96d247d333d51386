"""Pydantic models of the wire format: what the OpenAPI document describes and what is sent."""
