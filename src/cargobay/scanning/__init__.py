"""Offline vulnerability scanning as pure functions: no database, no HTTP, no I/O but the stream given.

The integration (job, cache, database) calls, per manifest::

    inv = layers.read_layer(blob_stream)             # per layer, cache inv.to_json() by layer digest
    image = inventory.merge([inv0, inv1, ...])       # bottom layer first; store image.to_json()
    found = matcher.match(image, advisories)         # advisories(ecosystem, name) -> OSV records
    keys = matcher.lookup_keys(image)                # index these to re-match after a DB update
    sbom = sbom.cyclonedx_json(image, name=..., version=digest)

``advisories`` receives the normalised name (``osv.normalize_name``); store records under
``(affected.package.ecosystem, normalize_name(...))`` and give back ``osv.OsvRecord.parse(json)``.
``read_layer`` never raises for bad input: damage is reported in ``LayerInventory.errors`` and
unusable files in ``FileFacts.skipped``. ``LayerInventory.from_json`` / ``ImageInventory.from_json``
raise ``InventoryFormatError`` for a cache of another format version: read the layer again.
``osvfiles`` reads OSV documents from the files, folders and ``all.zip`` dumps it is given (the only
module here that opens paths). This package imports nothing from the rest of Cargobay.
"""
