"""The edges of leadbot: the command line now, the aiohttp application and adapters later."""
