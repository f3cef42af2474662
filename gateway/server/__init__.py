"""Process assembly: settings, the aiohttp application, metrics, worker processes."""
