"""Versioned routers: every route parses, calls one service function, renders."""
