"""Page views, one module per page group."""
