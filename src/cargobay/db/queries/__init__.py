"""Named queries, one module per table family, shared by services, auth, jobs and scanning.

Hot paths use raw single statements (``Database.fetch_one`` / ``RawTx``); the rest take an ORM
``Session`` so a caller composes several of them in one transaction.
"""
