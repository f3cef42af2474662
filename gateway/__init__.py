"""Atonix Gateway: the object engine (engine) and process assembly (server, cli)."""
