"""atonix-cli: serve and administer the gateway."""
