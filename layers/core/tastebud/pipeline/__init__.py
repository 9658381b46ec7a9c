"""The request pipeline: the four stages, the service that runs them, and what explains a page."""
