"""Retrieval methods: one module per family; variants are configurations in the registry."""
