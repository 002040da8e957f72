"""Built-in plugins: core behaviour registered like any plugin, so a site can replace it."""
