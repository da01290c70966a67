"""The production HTTP server: an ASGI app over the Python API (docs/serving.md).

    from regionreasoner.agent.server import ServeSettings, create_app
    app = create_app(agent, ServeSettings(tokens={"s3cret": "alice"}))   # then: uvicorn.run(app, ...)

FastAPI and uvicorn are imported only when this package is (``pip install 'regionreasoner[serve]'``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["ServeSettings", "create_app"]

if TYPE_CHECKING:
    from regionreasoner.agent.server.app import create_app
    from regionreasoner.agent.server.settings import ServeSettings


def __getattr__(name: str) -> Any:
    # Lazy: importing the package for ServeSettings must not pull FastAPI in before it is needed.
    if name == "ServeSettings":
        from regionreasoner.agent.server.settings import ServeSettings

        return ServeSettings
    if name == "create_app":
        from regionreasoner.agent.server.app import create_app

        return create_app
    raise AttributeError(name)
