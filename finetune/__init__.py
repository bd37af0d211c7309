"""Training scripts for the emotion classifier and the reply adapter (not built yet)."""
