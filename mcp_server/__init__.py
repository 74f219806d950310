"""The MCP server for IDE assistants (the catalog's tools, resources and prompts). Not built yet."""
