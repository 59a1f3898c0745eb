"""Ingestion: Documents are split into passages, embedded and written to an index's storage
backend in crash-safe batches, in this process (``pipeline``) or on a Ray cluster
(``distributed``). Imports ``storage/``, ``search/``, ``models/``, ``documents/`` and the ground floor."""
