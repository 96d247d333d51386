"""Blob storage: the BlobStore interface, its drivers, and the encryption envelope."""
