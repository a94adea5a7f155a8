"""AST to checked IR to generated TFP-on-JAX Python."""
