"""Sakuga Hub: `python app.py [--config PATH] [--host HOST] [--port PORT]`.

This file only wires: config -> context (engine, database) -> UI -> launch.
"""

from __future__ import annotations

import argparse
import logging
import os

from hub.config import load_config
from hub.ui import build_app, launch_kwargs
from hub.ui.context import create_context
from hub.ui.mcp import limit_mcp_tools


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Start the Sakuga Hub web app.")
    parser.add_argument("--config", default=None, help="config file (default: spaces_config.yaml or $HUB_CONFIG)")
    parser.add_argument("--host", default=None, help="address to listen on (default: Gradio's, or $GRADIO_SERVER_NAME)")
    parser.add_argument("--port", type=int, default=None, help="port (default: 7860, or $GRADIO_SERVER_PORT)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    # Gradio rebuilds its analytics table after every event by default, which slows the server
    # down as votes pile up; refresh it every 100 events instead.
    os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", "100")
    config = load_config(args.config)
    context = create_context(config)
    demo = build_app(context)
    demo.queue(default_concurrency_limit=8)
    demo.launch(server_name=args.host, server_port=args.port, prevent_thread_lock=True, **launch_kwargs(context))
    limit_mcp_tools(demo, config)  # only the read-only API stays an MCP tool
    demo.block_thread()


if __name__ == "__main__":
    main()
