"""Offline vulnerability scanning as pure functions: no database, no HTTP.

``layers.read_layer`` streams one layer blob into a ``LayerInventory`` (cacheable by layer digest),
``inventory.merge`` replays layer inventories bottom-up into an ``ImageInventory`` (stored per
manifest), ``matcher.match`` turns an image inventory plus an OSV lookup into findings, and
``sbom.cyclonedx_json`` writes the inventory as a CycloneDX SBOM.
"""
