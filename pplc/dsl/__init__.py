"""Source text to AST: spans, diagnostics, the AST and the parser."""
