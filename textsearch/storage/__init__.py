"""Storage: where an index keeps its passages: the SQLite store, the hnswlib graph and its
crash-safe file, the backend protocol with the local and the Milvus backend, and the files an
index directory owns. Imports ``search/`` (the Reader it implements), ``documents/`` and the ground floor."""
