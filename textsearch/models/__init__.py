"""Models: a model name becomes a folder (the bundled e5 build, merged LoRA adapters, the cache),
is loaded (sentence-transformers, or ONNX Runtime without torch) and embeds text (``encoder``).
Imports only the ground floor (``errors``, ``config``, ``hits``); every stage above may import it."""
