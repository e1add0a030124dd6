"""Models with learngene structure inside them (the core builds standard transformers classes):
the factorized linear layer shared by FINE and knowledge diversion, FINE's DiT and its learngene.
They need diffusers; import them from here or as ``hf_learngene.<Name>``."""
