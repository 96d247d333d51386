"""The console's pages, one module per resource; one function per operation."""
