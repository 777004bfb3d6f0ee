"""Errors a user can fix; the CLI prints them as one line."""


class UserError(Exception):
    """An error the user can fix (bad argument, file, permission); printed as one line."""
