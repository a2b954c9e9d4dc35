"""Tools: typed functions over a CI's own data (`base`), served and called by a CI's
toolbox (`box`); external MCP servers' tools joined to a CI's (`mcp_in`)."""
