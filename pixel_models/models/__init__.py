"""The model families, one file each (PixelCNN, PixelRNN), and the registry
that maps `config.model.name` to them."""
