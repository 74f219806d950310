"""Errors of the tool catalog."""


class ToolError(Exception):
    """Base of every catalog error."""


class DuplicateToolError(ToolError):
    """A tool with this name is registered already."""


class UnknownToolError(ToolError):
    """No tool has this name."""


class InvalidArgumentsError(ToolError):
    """Arguments do not fit the tool's input model; the message is a sentence a person can read."""
