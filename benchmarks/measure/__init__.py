"""One module per metric; each takes a model (or a name) and returns plain numbers."""
