"""Prior LT methods, one module each, registered in ``METHODS``; losses they share live in ``losses``."""
