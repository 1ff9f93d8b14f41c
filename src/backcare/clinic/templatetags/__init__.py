"""Template tags of the clinic application."""
