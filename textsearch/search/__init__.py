"""Search: what a query does over any backend's ``Reader``: dense, keyword or hybrid candidates,
fusion, filters, copies collapsed to one hit, the cross-encoder rerank and the "no confident
match" rule. Imports ``models/``, ``documents/`` and the ground floor; the storage backends
implement its Reader."""
