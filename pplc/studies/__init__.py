"""The seed's studies: its published data sets (MNIST, MovieLens) and MovieLens recommendations."""
