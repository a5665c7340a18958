"""The hub as a tool for agents: its read-only API served over MCP (Gradio's `mcp_server`).

Gradio makes every public API endpoint an MCP tool. The hub keeps only the read-only ones: boards,
report cards, probe answers already on record, the arena board of a category and recipe reading.
Generation, probes and votes spend GPU time or change a board, so they stay off MCP unless the
deployment sets `mcp.gpu_tools: true` (and even then each endpoint checks the caller's identity and
quota, as over HTTP). Tool list: README, "Agents (MCP)".
"""

from __future__ import annotations

from typing import Any

READ_ONLY_TOOLS = ("board", "report_card", "probe_answers", "category_board", "read_recipe")
GPU_TOOLS = ("generate", "edit", "xy_grid", "probe_character")


def allowed_endpoints(config: Any) -> set[str]:
    return set(READ_ONLY_TOOLS) | (set(GPU_TOOLS) if config.mcp.gpu_tools else set())


def limit_mcp_tools(demo: Any, config: Any) -> list[str]:
    """Drop every MCP tool but the allowed endpoints (call right after `launch`); returns the tool names."""
    server = getattr(demo, "mcp_server_obj", None)
    if server is None:
        return []
    keep = allowed_endpoints(config)
    server.tool_to_endpoint = {tool: endpoint for tool, endpoint in server.tool_to_endpoint.items()
                               if endpoint.lstrip("/") in keep}
    return sorted(server.tool_to_endpoint)
