"""The MCP server (Model Context Protocol, Streamable HTTP): the interpreter for any MCP client."""
