"""Cookies the app sets (sealed, HttpOnly, SameSite, Secure when configured) and CSRF checks."""
