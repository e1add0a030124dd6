"""Custom models (factorized layers, FINE DiT, PIPMN) live here; the core builds standard classes."""
