"""Django forms for the clinic pages, one module per area."""
