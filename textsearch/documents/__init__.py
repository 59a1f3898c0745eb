"""Documents: a folder becomes Documents (walked, decoded, one reader per file format) and a
Document becomes Passages (split by sentences to the model's length). Imports only the ground
floor; storage keeps what this stage makes, ingestion drives it."""
